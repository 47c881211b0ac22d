import { OpenAPIHono } from '@hono/zod-openapi';
import type { RequireRole } from '../auth/middleware.ts';
import type { RegistryService } from '../registry/service.ts';
import type { BlobStore, RegistryStore } from '../storage/types.ts';
import type { AdminEnv } from './admin-route.ts';
import { createApprovalRoutes } from './approvals.ts';
import { createAuditRoutes } from './audit.ts';
import { createChannelRoutes } from './channels.ts';
import { createChunkUploadRoutes } from './chunk-uploads.ts';
import { createReleaseRoutes } from './releases.ts';
import { createRolloutRoutes } from './rollouts.ts';
import { createWhoamiRoutes } from './whoami.ts';

export interface AdminDeps {
  registry: RegistryStore;
  blobs: BlobStore;
  service: RegistryService;
  /** One authenticator for every admin route, so failed attempts are counted together. */
  requireRole: RequireRole;
}

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
  app.route('/', createChannelRoutes(deps));
  app.route('/', createApprovalRoutes(deps));
  app.route('/', createAuditRoutes(deps));
  return app;
}
