import { z } from '@hono/zod-openapi';
import { type AdminDeps, actor, adminRoutes, json, jsonBody } from './admin-route.ts';
import { ChannelModelParams, ChannelParams, ReasonBodySchema, RolloutFields } from './api-schemas.ts';
import { SemVer } from './wire-schemas.ts';

const PromoteReleaseBodySchema = z.strictObject({ release: SemVer });

/** What a channel serves per model, with the rollout running on it (GET /apps/{app}/channels/{channel}). */
const ChannelStateSchema = z
  .object({
    app: z.string(),
    channel: z.string(),
    manifestVersion: z.number().nullable(),
    models: z.array(
      z.object({
        app: z.string(),
        channel: z.string(),
        model: z.string(),
        production: z.string().nullable(),
        previousProduction: z.string().nullable(),
        updatedAt: z.string(),
        // Inline, not the component: OpenAPI 3.0's `nullable` needs a `type` beside it, a $ref has none.
        rollout: RolloutFields.nullable(),
      }),
    ),
  })
  .openapi('ChannelState');

/** `/v1/admin/apps/.../channels` and `/v1/admin/channels`: what each channel serves, and direct promotion and rollback. */
export function createChannelRoutes({ registry, service, ...deps }: AdminDeps) {
  const { app, route } = adminRoutes(deps);

  route('post', '/apps/{app}/channels/{channel}/models/{model}/promote', 'promoteRelease', 'operator', {
    summary: 'Promote a release directly (no rollout)',
    request: { params: ChannelModelParams, ...jsonBody(PromoteReleaseBodySchema) },
    responses: { 200: json(z.object({ production: z.string() }), 'Promoted') },
    handler: async (c) => {
      const { release } = c.req.valid('json');
      await service.promoteRelease(actor(c), c.req.valid('param'), release);
      return c.json({ production: release }, 200);
    },
  });

  route('post', '/apps/{app}/channels/{channel}/models/{model}/rollback', 'rollbackRelease', 'operator', {
    summary: 'Roll production back to the release it replaced',
    request: { params: ChannelModelParams, ...jsonBody(ReasonBodySchema) },
    responses: { 200: json(z.object({ production: z.string() }), 'Rolled back') },
    handler: async (c) =>
      c.json(await service.rollback(actor(c), c.req.valid('param'), c.req.valid('json').reason), 200),
  });

  route('get', '/apps/{app}/channels/{channel}', 'getChannel', 'viewer', {
    summary: "A channel's models: production, running rollout, manifest version",
    request: { params: ChannelParams },
    responses: { 200: json(ChannelStateSchema, 'Channel state') },
    handler: async (c) => {
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
  });

  route('get', '/channels', 'listChannels', 'viewer', {
    summary: 'Every app and channel with a manifest',
    responses: {
      200: json(
        z.object({ channels: z.array(z.object({ app: z.string(), channel: z.string() })) }),
        'Channels',
      ),
    },
    handler: async (c) => c.json({ channels: await registry.listChannels() }, 200),
  });
  return app;
}
