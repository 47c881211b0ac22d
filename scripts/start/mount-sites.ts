import { join } from 'node:path';
import { mountDashboard } from '@edgeship/update-server';
import type { Hono } from 'hono';
import { mountDemo } from '../../demo-pwa/server/mount-demo.ts';

/** The dashboard at /dashboard/ and the demo PWA at the root of one origin (both built first). */
export function mountSites(app: Hono, sites: { repo: string; dashboardDist: string }): void {
  mountDashboard(app, { distDir: sites.dashboardDist });
  mountDemo(app, join(sites.repo, 'demo-pwa', 'dist'));
}
