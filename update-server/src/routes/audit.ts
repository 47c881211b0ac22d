import { z } from '@hono/zod-openapi';
import { type AdminDeps, adminRoutes, json } from './admin-route.ts';
import { AuditEntrySchema, AuditQuerySchema } from './api-schemas.ts';

/** `GET /v1/admin/audit` (viewer): who changed what, newest first. */
export function createAuditRoutes(deps: Pick<AdminDeps, 'registry' | 'requireRole'>) {
  const { app, route } = adminRoutes(deps);

  route('get', '/audit', 'listAudit', 'viewer', {
    summary: 'The audit trail, newest first (page with `before`)',
    request: { query: AuditQuerySchema },
    responses: { 200: json(z.object({ entries: z.array(AuditEntrySchema) }), 'Entries') },
    handler: async (c) => c.json({ entries: await deps.registry.listAudit(c.req.valid('query')) }, 200),
  });
  return app;
}
