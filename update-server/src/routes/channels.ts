import { z } from '@hono/zod-openapi';
import type { RequireRole } from '../auth/middleware.ts';
import type { RegistryService } from '../registry/service.ts';
import type { RegistryStore } from '../storage/types.ts';
import { actor, adminRoutes, json, jsonBody } from './admin-route.ts';
import {
  ChannelModelParams,
  ChannelStateSchema,
  PromoteReleaseBodySchema,
  ReasonBodySchema,
} from './api-schemas.ts';
import { Name } from './wire-schemas.ts';

export interface ChannelRouteDeps {
  registry: RegistryStore;
  service: RegistryService;
  requireRole: RequireRole;
}

/** `/v1/admin/apps/.../channels` and `/v1/admin/channels`: what each channel serves, and direct promotion and rollback. */
export function createChannelRoutes(deps: ChannelRouteDeps) {
  const { registry, service } = deps;
  const { app, route } = adminRoutes(deps.requireRole);

  app.openapi(
    route({
      operationId: 'promoteRelease',
      method: 'post',
      path: '/apps/{app}/channels/{channel}/models/{model}/promote',
      summary: 'Promote a release directly (no rollout)',
      role: 'operator',
      request: { params: ChannelModelParams, ...jsonBody(PromoteReleaseBodySchema) },
      responses: { 200: json(z.object({ production: z.string() }), 'Promoted') },
    }),
    async (c) => {
      const { release } = c.req.valid('json');
      await service.promoteRelease(actor(c), c.req.valid('param'), release);
      return c.json({ production: release }, 200);
    },
  );

  app.openapi(
    route({
      operationId: 'rollbackRelease',
      method: 'post',
      path: '/apps/{app}/channels/{channel}/models/{model}/rollback',
      summary: 'Roll production back to the release it replaced',
      role: 'operator',
      request: { params: ChannelModelParams, ...jsonBody(ReasonBodySchema) },
      responses: { 200: json(z.object({ production: z.string() }), 'Rolled back') },
    }),
    async (c) =>
      c.json(await service.rollback(actor(c), c.req.valid('param'), c.req.valid('json').reason), 200),
  );

  app.openapi(
    route({
      operationId: 'getChannel',
      method: 'get',
      path: '/apps/{app}/channels/{channel}',
      summary: "A channel's models: production, running rollout, manifest version",
      role: 'viewer',
      // Names, not any string: a NUL byte reaching PostgreSQL is an error there (a 500, once).
      request: { params: z.object({ app: Name, channel: Name }) },
      responses: { 200: json(ChannelStateSchema, 'Channel state') },
    }),
    async (c) => {
      const { app: appName, channel } = c.req.valid('param');
      const [models, rollouts, manifest] = await Promise.all([
        registry.listChannelModels(appName, channel),
        registry.listRollouts({ app: appName, channel, states: ['active'] }),
        registry.latestManifest(appName, channel),
      ]);
      return c.json(
        {
          app: appName,
          channel,
          manifestVersion: manifest?.version ?? null,
          models: models.map((m) => ({ ...m, rollout: rollouts.find((r) => r.model === m.model) ?? null })),
        },
        200,
      );
    },
  );

  app.openapi(
    route({
      operationId: 'listChannels',
      method: 'get',
      path: '/channels',
      summary: 'Every app and channel with a manifest',
      role: 'viewer',
      responses: {
        200: json(
          z.object({ channels: z.array(z.object({ app: z.string(), channel: z.string() })) }),
          'Channels',
        ),
      },
    }),
    async (c) => c.json({ channels: await registry.listChannels() }, 200),
  );
  return app;
}
