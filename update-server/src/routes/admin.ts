import { OpenAPIHono } from '@hono/zod-openapi';
import type { AdminDeps, AdminEnv } from './admin-route.ts';
import { createAlertRoutes } from './alerts.ts';
import { createApprovalRoutes } from './approvals.ts';
import { createAuditRoutes } from './audit.ts';
import { createChannelRoutes } from './channels.ts';
import { createChunkUploadRoutes } from './chunk-uploads.ts';
import { createReleaseRoutes } from './releases.ts';
import { createRolloutScheduleRoutes } from './rollout-schedules.ts';
import { createRolloutRoutes } from './rollouts.ts';
import { createWhoamiRoutes } from './whoami.ts';

/**
 * The admin API (mounted at /v1/admin): one module per resource, each built with the route
 * helper of admin-route.ts, behind role-checked bearer tokens.
 */
export function createAdminRoutes(deps: AdminDeps) {
  const app = new OpenAPIHono<AdminEnv>();
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  app.route('/', createWhoamiRoutes(deps));
  app.route('/', createChunkUploadRoutes(deps));
  app.route('/', createReleaseRoutes(deps));
  app.route('/', createRolloutRoutes(deps));
  app.route('/', createRolloutScheduleRoutes({ ...deps, schedules: deps.canary?.schedules ?? null }));
  app.route('/', createChannelRoutes(deps));
  app.route('/', createApprovalRoutes(deps));
  app.route('/', createAlertRoutes({ ...deps, alerts: deps.canary?.alerts ?? null }));
  app.route('/', createAuditRoutes(deps));
  return app;
}
