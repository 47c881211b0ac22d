import { type ServerProcess, spawnServer } from '../../../test/support/server-process.ts';
import { tempDirs } from '../../../test/support/temp-dirs.ts';
import { loadServerKeys, type ServerKeys } from '../keys/server-keys.ts';
import { createTestSchema, type TestSchema } from '../storage/registry.suite.ts';

/** One `edgeship-server` process of a cluster, with the data directory it alone uses. */
export interface ClusterProcess extends ServerProcess {
  dataDir: string;
}

/** The PostgreSQL schema and the keys every process of a cluster shares. */
export interface ClusterBase {
  schema: TestSchema;
  keysDir: string;
  /** A production deployment brings its keys (`edgeship keygen`); here they are made once. */
  keys: ServerKeys;
}

/**
 * Real `edgeship-server` processes on one fresh PostgreSQL schema, as behind a load balancer:
 * each with its own data directory, all reading one keys directory. The schema and keys are made
 * by the first `start` (call it from a test, not beforeAll: a failed hook reports the tests as
 * skipped, and a missing PostgreSQL must fail them); `close` (in afterAll) stops every process
 * and drops the schema.
 */
export function processCluster() {
  const temps = tempDirs();
  const children: ServerProcess[] = [];
  let base: Promise<ClusterBase> | undefined;
  const shared = () =>
    (base ??= (async () => {
      const schema = await createTestSchema();
      const keysDir = await temps.make('edgeship-keys-');
      return { schema, keysDir, keys: await loadServerKeys(keysDir, { createIfMissing: true }) };
    })());
  return {
    shared,
    /** Spawns one more process on port 0 (test/support/server-process.ts), with `args` added. */
    async start(args: readonly string[] = []): Promise<ClusterProcess> {
      const { schema, keysDir } = await shared();
      const dataDir = await temps.make('edgeship-proc-');
      const server = await spawnServer([
        ...['--database-url', schema.url, '--data-dir', dataDir, '--keys-dir', keysDir],
        ...['--port', '0', '--log-level', 'warn', ...args],
      ]);
      children.push(server);
      return { ...server, dataDir };
    },
    async close(): Promise<void> {
      await Promise.all(children.map((child) => child.stop()));
      await (await base?.catch(() => undefined))?.schema.drop();
      await temps.removeAll();
    },
  };
}
