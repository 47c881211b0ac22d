import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const RULES = join(PACKAGE_DIR, 'deploy', 'prometheus-alerts.yml');
const run = promisify(execFile);

it('the shipped Prometheus alerting rules pass promtool check rules', async () => {
  const { stdout } = await run('promtool', ['check', 'rules', RULES], { timeout: 30_000 });
  expect(stdout).toMatch(/SUCCESS: 7 rules found/);
});

it('the rules name only series the server exports', async () => {
  const text = await readFile(RULES, 'utf8');
  const named = new Set([...text.matchAll(/\b(edgeship_[a-z_]+?)(?:_bucket)?\b/g)].map((m) => m[1]!));
  const sources = await Promise.all(
    ['src/telemetry/metrics.ts', 'src/http/metrics.ts', 'src/canary/webhook-outbox.ts'].map((f) =>
      readFile(join(PACKAGE_DIR, f), 'utf8'),
    ),
  );
  const exported = new Set(
    sources.flatMap((s) => [...s.matchAll(/'(edgeship_[a-z_]+)'/g)].map((m) => m[1]!)),
  );
  expect(named.size).toBeGreaterThan(3);
  for (const name of named) expect(exported, name).toContain(name);
});

it('ships in the package', async () => {
  const pkg = JSON.parse(await readFile(join(PACKAGE_DIR, 'package.json'), 'utf8'));
  expect(pkg.files).toContain('deploy');
});
