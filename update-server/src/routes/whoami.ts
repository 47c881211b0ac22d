import { z } from '@hono/zod-openapi';
import type { RequireRole } from '../auth/middleware.ts';
import { adminRoutes, json } from './admin-route.ts';

/** `GET /v1/admin/whoami` (viewer): the calling token, so a client can check it before it acts. */
export function createWhoamiRoutes(deps: { requireRole: RequireRole }) {
  const { app, route } = adminRoutes(deps.requireRole);

  app.openapi(
    route({
      operationId: 'whoami',
      method: 'get',
      path: '/whoami',
      summary: 'The calling token',
      role: 'viewer',
      responses: {
        200: json(
          z.object({ name: z.string(), role: z.string(), expiresAt: z.string().nullable() }),
          'Token',
        ),
      },
    }),
    (c) => {
      const { name, role, expiresAt } = c.get('token');
      return c.json({ name, role, expiresAt }, 200);
    },
  );
  return app;
}
