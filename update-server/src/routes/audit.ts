import { z } from '@hono/zod-openapi';
import type { RequireRole } from '../auth/middleware.ts';
import type { RegistryStore } from '../storage/types.ts';
import { adminRoutes, json } from './admin-route.ts';
import { AuditEntrySchema, AuditQuerySchema } from './api-schemas.ts';

/** `GET /v1/admin/audit` (viewer): who changed what, newest first. */
export function createAuditRoutes(deps: { registry: RegistryStore; requireRole: RequireRole }) {
  const { app, route } = adminRoutes(deps.requireRole);

  app.openapi(
    route({
      operationId: 'listAudit',
      method: 'get',
      path: '/audit',
      summary: 'The audit trail, newest first (page with `before`)',
      role: 'viewer',
      request: { query: AuditQuerySchema },
      responses: { 200: json(z.object({ entries: z.array(AuditEntrySchema) }), 'Entries') },
    }),
    async (c) => c.json({ entries: await deps.registry.listAudit(c.req.valid('query')) }, 200),
  );
  return app;
}
