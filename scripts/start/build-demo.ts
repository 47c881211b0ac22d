import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TrustedRoot } from '@edgeship/protocol';

const SOURCES = [
  'demo-pwa/src',
  'demo-pwa/public',
  'demo-pwa/models',
  'demo-pwa/index.html',
  'demo-pwa/vite.config.ts',
  'runtime/src',
  'protocol/src',
  'package-lock.json',
];

/**
 * Builds the demo PWA with the root keys pinned into it, unless the last build had the same
 * keys and sources (a stamp of both sits in dist/).
 */
export async function buildDemo(
  repo: string,
  trustedRoot: TrustedRoot,
): Promise<{ rebuilt: boolean; ms: number }> {
  const started = performance.now();
  const dist = join(repo, 'demo-pwa', 'dist');
  const rootJson = JSON.stringify(trustedRoot);
  const stamp = await fingerprint(repo, rootJson);
  const stampFile = join(dist, '.edgeship-build');
  if (existsSync(stampFile) && (await readFile(stampFile, 'utf8')) === stamp) {
    return { rebuilt: false, ms: performance.now() - started };
  }
  const { build } = await import('vite');
  process.env.EDGESHIP_TRUSTED_ROOT = rootJson;
  await build({ configFile: join(repo, 'demo-pwa', 'vite.config.ts'), logLevel: 'warn' });
  await writeFile(stampFile, stamp);
  return { rebuilt: true, ms: performance.now() - started };
}

async function fingerprint(repo: string, rootJson: string): Promise<string> {
  const hash = createHash('sha256').update(rootJson);
  const visit = async (path: string): Promise<void> => {
    const info = await stat(path).catch(() => null);
    if (!info) return;
    if (info.isDirectory()) {
      for (const entry of (await readdir(path)).sort()) {
        if (entry !== 'node_modules' && entry !== 'dist' && !entry.endsWith('.test.ts'))
          await visit(join(path, entry));
      }
      return;
    }
    hash.update(path).update(String(info.size)).update(String(info.mtimeMs));
  };
  for (const source of SOURCES) await visit(join(repo, source));
  return hash.digest('hex');
}
