import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../test/support/server.ts';
import { parseServerCommand } from './config/command.ts';
import { envName, SERVER_OPTIONS } from './config/options.ts';
import { SERVER_VERSION } from './main.ts';

/** What DEPLOY.md promises, checked against the server and the files the package ships. */

const run = promisify(execFile);
const PACKAGE_DIR = resolve(import.meta.dirname, '..');
const UNIT = join(PACKAGE_DIR, 'deploy', 'edgeship-server@.service');
const ENV_EXAMPLE = join(PACKAGE_DIR, 'deploy', 'server.env.example');
const pkg = JSON.parse(await readFile(join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  files: string[];
};

let t: TestServer;
let chunk: string;

beforeAll(async () => {
  t = await startTestServer();
  const signed = await publish(t, seededBytes(100_000, 5), { model: 'kws', version: '1.0.0' });
  await t.operator.promoteRelease('app', 'stable', 'kws', '1.0.0');
  chunk = signed.signed.files[0]!.chunks[0]!.sha256;
});
afterAll(() => t.stop());

/** The rows of DEPLOY.md's cache-header table: path pattern → Cache-Control. */
async function promisedCacheHeaders(): Promise<Array<{ path: string; cacheControl: string }>> {
  const guide = await readFile(join(PACKAGE_DIR, 'DEPLOY.md'), 'utf8');
  const table = guide.slice(guide.indexOf('<!-- cache-headers'));
  const rows: Array<{ path: string; cacheControl: string }> = [];
  for (const line of table.split('\n').slice(3)) {
    if (!line.startsWith('| `GET ')) break;
    const [, path, cacheControl] = /^\| `GET ([^`]+)` \| `([^`]+)` \|/.exec(line) ?? [];
    rows.push({ path: path!, cacheControl: cacheControl! });
  }
  return rows;
}

describe('DEPLOY.md: what a CDN may cache', () => {
  it('chunk, manifest and key set responses carry the Cache-Control the guide promises', async () => {
    const rows = await promisedCacheHeaders();
    expect(rows.map((r) => r.path)).toEqual([
      '/v1/chunks/<sha256>',
      '/v1/apps/<app>/channels/<channel>/manifest',
      '/v1/keyset',
    ]);
    for (const { path, cacheControl } of rows) {
      const url = path.replace('<sha256>', chunk).replace('<app>', 'app').replace('<channel>', 'stable');
      const response = await fetch(`${t.server.url}${url}`, { headers: { 'accept-encoding': 'br' } });
      await response.arrayBuffer();
      expect(response.status, url).toBe(200);
      expect(response.headers.get('cache-control'), url).toBe(cacheControl);
      expect(response.headers.get('cross-origin-resource-policy'), url).toBe('cross-origin');
    }
  });

  it('chunks have a strong ETag naming their hash and take ranges; manifests vary by encoding', async () => {
    const chunkResponse = await fetch(`${t.server.url}/v1/chunks/${chunk}`, {
      headers: { range: 'bytes=0-9' },
    });
    expect(chunkResponse.status).toBe(206);
    expect(chunkResponse.headers.get('etag')).toBe(`"${chunk}"`);
    expect(chunkResponse.headers.get('accept-ranges')).toBe('bytes');
    expect((await chunkResponse.arrayBuffer()).byteLength).toBe(10);
    const revalidated = await fetch(`${t.server.url}/v1/chunks/${chunk}`, {
      headers: { 'if-none-match': `"${chunk}"` },
    });
    expect(revalidated.status).toBe(304);

    const etags = new Set<string>();
    for (const encoding of ['br', 'gzip', 'identity']) {
      const response = await fetch(`${t.server.url}/v1/apps/app/channels/stable/manifest`, {
        headers: { 'accept-encoding': encoding },
      });
      await response.arrayBuffer();
      expect(response.headers.get('vary')).toMatch(/accept-encoding/i);
      const etag = response.headers.get('etag')!;
      expect(etag).toMatch(/^"/); // strong: no W/
      etags.add(etag);
    }
    expect(etags.size).toBe(3);
  });

  it('nothing the guide says never to cache is marked public', async () => {
    const responses = await Promise.all([
      fetch(`${t.server.url}/v1/admin/whoami`, {
        headers: { authorization: `Bearer ${t.server.tokens!.viewer}` },
      }),
      fetch(`${t.server.url}/v1/telemetry`, {
        method: 'POST',
        body: '{}',
        headers: { 'content-type': 'application/json' },
      }),
      fetch(`${t.server.url}/metrics`),
      fetch(`${t.server.url}/healthz`),
      fetch(`${t.server.url}/readyz`),
    ]);
    for (const response of responses) {
      await response.arrayBuffer();
      expect(response.headers.get('cache-control') ?? '', response.url).not.toMatch(/public|max-age=[1-9]/);
    }
  });
});

describe('the example systemd unit', () => {
  async function unit() {
    const text = await readFile(UNIT, 'utf8');
    // Continuation lines join; comments go.
    const lines = text
      .replace(/\\\n\s*/g, ' ')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'));
    const sections = new Map<string, Map<string, string>>();
    let current: Map<string, string> | undefined;
    for (const line of lines) {
      const header = /^\[(\w+)\]$/.exec(line);
      if (header) {
        current = new Map();
        sections.set(header[1]!, current);
      } else {
        const eq = line.indexOf('=');
        expect(eq, line).toBeGreaterThan(0);
        current!.set(line.slice(0, eq), line.slice(eq + 1).trim());
      }
    }
    return sections;
  }

  it('ships in the package', async () => {
    expect(pkg.files).toContain('deploy');
    expect(pkg.files).toContain('DEPLOY.md');
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: PACKAGE_DIR,
    });
    const files = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map(
      (f) => f.path,
    );
    expect(files).toEqual(
      expect.arrayContaining(['DEPLOY.md', 'deploy/edgeship-server@.service', 'deploy/server.env.example']),
    );
  });

  it('runs the package bin with flags edgeship-server accepts, and names real variables', async () => {
    const sections = await unit();
    expect([...sections.keys()]).toEqual(['Unit', 'Service', 'Install']);
    const service = sections.get('Service')!;
    const [command, ...args] = service.get('ExecStart')!.split(/\s+/);
    expect(Object.keys(pkg.bin)).toContain(basename(command!));
    const parsed = parseServerCommand(
      args.map((a) => a.replaceAll('%i', '8787')),
      { version: SERVER_VERSION, env: {} },
    );
    expect(parsed.run).toBe(true);
    if (!parsed.run) return;
    expect(parsed.options).toMatchObject({ port: 8787, host: '0.0.0.0', metricsAuth: true, trustProxy: 1 });
    expect(parsed.options.rateLimitStore?.kind).toBe('redis');
    expect(service.get('KillSignal')).toBe('SIGTERM');

    const known = new Set(SERVER_OPTIONS.map(envName));
    const example = (await readFile(ENV_EXAMPLE, 'utf8')).split('\n').filter((l) => /^[A-Z_]+=/.test(l));
    expect(example.length).toBeGreaterThan(3);
    for (const line of example) expect(known.has(line.slice(0, line.indexOf('='))), line).toBe(true);
  });

  it('passes systemd-analyze verify, pointed at this checkout’s bin', async () => {
    const analyze = await run('systemd-analyze', ['--version']).catch(() => null);
    const sections = await unit();
    expect(sections.get('Install')?.get('WantedBy')).toBe('multi-user.target');
    if (!analyze) {
      console.log('systemd-analyze is not installed: the structural checks above are all that ran');
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), 'edgeship-unit-'));
    try {
      const text = (await readFile(UNIT, 'utf8')).replace(
        /^ExecStart=\S+/m,
        `ExecStart=${join(PACKAGE_DIR, pkg.bin['edgeship-server']!)}`,
      );
      const file = join(dir, 'edgeship-server@8787.service');
      await writeFile(file, text);
      const { stderr } = await run('systemd-analyze', ['verify', file]);
      expect(stderr).not.toMatch(/edgeship-server@8787\.service/);
      // The check can fail: a unit naming a missing command does.
      const broken = join(dir, 'edgeship-server@8788.service');
      await writeFile(broken, text.replace(/^ExecStart=\S+/m, 'ExecStart=/nonexistent/edgeship-server'));
      await expect(run('systemd-analyze', ['verify', broken])).rejects.toThrow(/not executable/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
