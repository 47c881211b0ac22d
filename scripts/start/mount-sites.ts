import { join } from 'node:path';
import type { Hono } from 'hono';
import { mountDemo } from '../../demo-pwa/server/mount-demo.ts';

/** The dashboard at /dashboard/ and the demo PWA at the root of one origin. */
export function mountSites(app: Hono, repo: string): void {
  mountDemo(app, join(repo, 'demo-pwa', 'dist'));
}
