import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Hono } from 'hono';

/** Isolation makes multi-threaded WASM possible (SharedArrayBuffer needs crossOriginIsolated). */
const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/**
 * Serves the built demo PWA at the root of the update server's origin: hashed assets forever,
 * the service worker and HTML never from a cache (so a new build is noticed), and index.html for
 * any other path the app routes itself.
 */
export function mountDemo(app: Hono, distDir: string): void {
  if (!existsSync(join(distDir, 'index.html'))) {
    throw new Error(
      `the demo PWA is not built: ${distDir}/index.html is missing (npm run build -w demo-pwa)`,
    );
  }
  app.use('*', async (c, next) => {
    await next();
    if (c.req.path.startsWith('/v1/') || c.req.path.startsWith('/dashboard')) return;
    for (const [name, value] of Object.entries(ISOLATION)) c.header(name, value);
    const path = c.req.path;
    if (path.startsWith('/assets/') || path.startsWith('/ort/') || path.startsWith('/tfjs/')) {
      c.header('Cache-Control', 'public, max-age=31536000, immutable');
    } else if (path === '/sw.js' || path.endsWith('.html') || path === '/' || path.endsWith('.webmanifest')) {
      c.header('Cache-Control', 'no-cache');
    }
  });
  app.get(
    '*',
    // Hono's MIME table already maps .mjs to JavaScript (module workers) and .wasm to
    // application/wasm (streaming compilation).
    serveStatic({ root: distDir }),
  );
  const index = join(distDir, 'index.html');
  app.get('*', async (c, next) => {
    const path = c.req.path;
    if (path.startsWith('/v1/') || path.startsWith('/dashboard') || /\.[a-z0-9]+$/i.test(path)) return next();
    return c.html(await readFile(index, 'utf8'));
  });
}
