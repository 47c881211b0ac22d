import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_DIR = fileURLToPath(new URL('.', import.meta.url));
export const DASHBOARD_DIST = join(DASHBOARD_DIR, 'dist');
// The page bundles the server's admin client too (admin-client.ts; its other imports are types).
const SOURCES = ['index.html', 'vite.config.ts', 'src', 'public', '../src/admin-client.ts'];

async function newestMtime(path: string): Promise<number> {
  const info = await stat(path).catch(() => null);
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  const entries = await readdir(path);
  const times = await Promise.all(entries.map((entry) => newestMtime(join(path, entry))));
  return Math.max(0, ...times);
}

/** True when dist/ is missing or older than any source file (a stale build would test old code). */
export async function dashboardIsStale(): Promise<boolean> {
  const built = await stat(join(DASHBOARD_DIST, 'index.html')).catch(() => null);
  if (!built) return true;
  const sources = await Promise.all(SOURCES.map((s) => newestMtime(join(DASHBOARD_DIR, s))));
  return Math.max(...sources) > built.mtimeMs;
}

/** Builds the dashboard with Vite (what `npm run build:dashboard -w update-server` does). */
export async function buildDashboard(): Promise<string> {
  const { build } = await import('vite');
  await build({ configFile: join(DASHBOARD_DIR, 'vite.config.ts'), logLevel: 'warn' });
  return DASHBOARD_DIST;
}

/** Builds only when needed; returns the dist directory to hand to mountDashboard. */
export async function ensureDashboardBuilt(): Promise<string> {
  if (await dashboardIsStale()) await buildDashboard();
  return DASHBOARD_DIST;
}
