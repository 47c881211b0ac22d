import { join } from 'node:path';
import { loadServerKeys, type RunningServer, startServer } from '@edgeship/update-server';
import { ensureDashboardBuilt } from '../../update-server/dashboard/build.ts';
import { buildDemo } from './build-demo.ts';
import { mountSites } from './mount-sites.ts';
import { publishDemoModels } from './publish-demo-models.ts';

export interface EdgeshipOptions {
  repo: string;
  dataDir: string;
  port: number;
  host: string;
  logLevel?: 'info' | 'warn' | 'silent';
  say?: (line: string) => void;
}

export interface RunningEdgeship {
  server: RunningServer;
  /** http://localhost:<port>: a secure context, so WebCrypto works in the page. */
  url: string;
  published: string[];
  close(): Promise<void>;
}

/** Everything `npm start` runs, as a function tests can call with their own data directory. */
export async function runEdgeship(opts: EdgeshipOptions): Promise<RunningEdgeship> {
  const say = opts.say ?? (() => {});
  // The pinned root keys are built into the app, so they must exist before the build.
  const keys = await loadServerKeys(join(opts.dataDir, 'keys'), { createIfMissing: true });
  if (keys.created) say(`start: created a development trust chain in ${join(opts.dataDir, 'keys')}`);
  const built = await buildDemo(opts.repo, keys.trustedRoot);
  say(`start: demo PWA ${built.rebuilt ? 'built' : 'up to date'} (${built.ms.toFixed(0)} ms)`);
  const dashboardDist = await ensureDashboardBuilt();
  const server = await startServer({
    dataDir: opts.dataDir,
    port: opts.port,
    host: opts.host,
    logLevel: opts.logLevel ?? 'warn',
    mount: (app) => mountSites(app, { repo: opts.repo, dashboardDist }),
  });
  try {
    const keysDir = join(opts.dataDir, 'keys');
    const published = await publishDemoModels(server, { repo: opts.repo, keysDir, say });
    return {
      server,
      url: server.url.replace('127.0.0.1', 'localhost'),
      published,
      close: () => server.close(),
    };
  } catch (error) {
    await server.close();
    throw error;
  }
}
