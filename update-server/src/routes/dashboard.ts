import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Context, Hono } from 'hono';

/** Where `npm run build:dashboard -w update-server` writes the dashboard. */
export const DEFAULT_DASHBOARD_DIST = fileURLToPath(new URL('../../dashboard/dist', import.meta.url));

export interface DashboardOptions {
  /** The built dashboard (index.html and assets/). */
  distDir?: string;
  /** The URL prefix it is served under; the build's `base` must match. */
  prefix?: string;
}

/**
 * Everything the page loads comes from this origin: no CDN, no inline script or style, so the
 * dashboard renders on a machine with no internet and an injected string cannot run as code.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Hashed file names never change content, so they may be cached for good; index.html never is. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

/** Serves the operator dashboard's static build at /dashboard/ (SPA: unknown pages get index.html). */
export function mountDashboard(app: Hono, opts: DashboardOptions = {}): void {
  const distDir = resolve(opts.distDir ?? DEFAULT_DASHBOARD_DIST);
  const prefix = (opts.prefix ?? '/dashboard').replace(/\/$/, '');
  const indexFile = join(distDir, 'index.html');
  if (!existsSync(indexFile)) {
    throw new Error(
      `the dashboard is not built: ${indexFile} is missing (run \`npm run build:dashboard -w update-server\`)`,
    );
  }

  const secure = (c: Context, cacheControl: string) => {
    c.header('Content-Security-Policy', DASHBOARD_CSP);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Cache-Control', cacheControl);
  };

  app.get(prefix, (c) => c.redirect(`${prefix}/`, 301));
  app.use(`${prefix}/*`, async (c, next) => {
    await next();
    // Set after the response exists, so every answer under the prefix (files, index, 404) carries them.
    const immutable = c.res.ok && c.req.path.startsWith(`${prefix}/assets/`);
    secure(c, immutable ? IMMUTABLE : REVALIDATE);
  });
  app.use(
    `${prefix}/*`,
    serveStatic({ root: distDir, rewriteRequestPath: (path) => path.slice(prefix.length) || '/' }),
  );
  app.get(`${prefix}/*`, async (c) => {
    // A missing hashed asset is a real 404 (a stale page after a deploy), not the app shell.
    if (c.req.path.startsWith(`${prefix}/assets/`) || /\.[a-z0-9]+$/i.test(c.req.path)) return c.notFound();
    return c.html(await readFile(indexFile, 'utf8'));
  });
}
