import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../test/support/server.ts';
import { GENERATED_TYPES, generateAdminApiTypes } from '../scripts/generate-admin-api.ts';

interface Operation {
  operationId?: string;
  servers?: Array<{ url: string }>;
}
interface Document {
  servers: Array<{ url: string }>;
  paths: Record<string, Record<string, Operation>>;
}

const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete'];
const redoclyCli = createRequire(import.meta.url).resolve('@redocly/cli/bin/cli.js');

/** `METHOD /full/path/:param` for each operation, under its own server or the document's. */
function operationsOf(doc: Document): string[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => {
        const base = (op.servers ?? doc.servers)[0]!.url.replace(/\/$/, '');
        return `${method.toUpperCase()} ${base}${path.replace(/\{(\w+)\}/g, ':$1')}`;
      }),
  );
}

describe('the OpenAPI document', () => {
  let t: TestServer;
  let doc: Document;
  beforeAll(async () => {
    t = await startTestServer();
    doc = (await (await fetch(`${t.server.url}/v1/openapi.json`)).json()) as Document;
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('documents every route the server serves, and only those', () => {
    const served = t.server.app.routes
      .filter((route) => route.method !== 'ALL' && route.path !== '/v1/openapi.json')
      .map((route) => `${route.method} ${route.path}`);
    expect(new Set(operationsOf(doc))).toEqual(new Set(served));
  });

  it('names every operation once', () => {
    const ids = Object.values(doc.paths).flatMap((item) =>
      Object.entries(item)
        .filter(([method]) => METHODS.includes(method))
        .map(([, op]) => op.operationId),
    );
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("lints clean under Redocly's recommended rules", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edgeship-openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      await writeFile(file, JSON.stringify(doc));
      // The CLI itself (what `npx @redocly/cli lint` runs); it exits 1 on errors, so read its report either way.
      const run = promisify(execFile)(process.execPath, [redoclyCli, 'lint', file, '--format=json'], {
        cwd: dir,
        maxBuffer: 16 * 1024 * 1024,
      }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
      const report = JSON.parse((await run).stdout) as {
        totals: { errors: number };
        problems: Array<{ ruleId: string; location: Array<{ pointer: string }> }>;
      };
      const problems = report.problems.map((p) => `${p.ruleId} ${p.location[0]?.pointer}`);
      expect(report.totals.errors).toBe(0);
      // The one warning left: these four answer no 4xx (no input, no token, no rate limit), and
      // inventing one to please the rule would make the document lie.
      expect(problems.sort()).toEqual([
        'operation-4xx-response #/paths/~1healthz/get/responses',
        'operation-4xx-response #/paths/~1keyset/get/responses',
        'operation-4xx-response #/paths/~1readyz/get/responses',
        'operation-4xx-response #/paths/~1root/get/responses',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('is what the client types on disk were generated from (npm run generate:api -w update-server)', async () => {
    expect(await generateAdminApiTypes(doc)).toBe(await readFile(GENERATED_TYPES, 'utf8'));
  });
});
