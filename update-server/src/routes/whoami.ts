import { z } from '@hono/zod-openapi';
import { type AdminDeps, adminRoutes, json } from './admin-route.ts';

/** `GET /v1/admin/whoami` (viewer): the calling token, so a client can check it before it acts. */
export function createWhoamiRoutes(deps: Pick<AdminDeps, 'requireRole'>) {
  const { app, route } = adminRoutes(deps);

  route('get', '/whoami', 'whoami', 'viewer', {
    summary: 'The calling token',
    responses: {
      200: json(z.object({ name: z.string(), role: z.string(), expiresAt: z.string().nullable() }), 'Token'),
    },
    handler: (c) => {
      const { name, role, expiresAt } = c.get('token');
      return c.json({ name, role, expiresAt }, 200);
    },
  });
  return app;
}
