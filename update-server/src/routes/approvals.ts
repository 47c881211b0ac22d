import { z } from '@hono/zod-openapi';
import { NO_POLICY } from '../registry/governance.ts';
import { type AdminDeps, actor, adminRoutes, json, jsonBody } from './admin-route.ts';
import { ChannelParams, ErrorSchema, ReleaseParams } from './api-schemas.ts';
import { Name, SemVer } from './wire-schemas.ts';

const ApprovalSchema = z
  .object({
    app: z.string(),
    channel: z.string(),
    model: z.string(),
    version: z.string(),
    approver: z.string(),
    approvedAt: z.string(),
  })
  .openapi('Approval');

const ChannelPolicyBodySchema = z
  .strictObject({
    requireApproval: z.boolean(),
    approverNotPublisher: z.boolean(),
    /** On a canary regression confined to segments: halt the rollout (default) or exclude them. */
    segmentRegression: z.enum(['halt', 'exclude']).optional(),
    /** Gates the signed release must record to be promoted or widened here (absent: none). */
    requireGates: z
      .array(
        z
          .string()
          .min(1)
          .max(64)
          .regex(/^[A-Za-z0-9._-]+$/),
      )
      .max(16)
      .optional(),
  })
  .openapi('ChannelPolicy');

const ChannelPolicyRecordSchema = z
  .object({
    app: z.string(),
    channel: z.string(),
    policy: ChannelPolicyBodySchema,
    updatedBy: z.string().nullable(),
    updatedAt: z.string().nullable(),
  })
  .openapi('ChannelPolicyRecord');

const ApproveParams = z.object({ app: Name, channel: Name, model: Name, version: SemVer });

/**
 * Approvals of a release for a channel's production (operator), and each channel's policy on
 * them (admin sets, viewer reads). Refusals answer E_POLICY and are in the audit trail.
 */
export function createApprovalRoutes({ registry, service, ...deps }: AdminDeps) {
  const { app, route } = adminRoutes(deps);

  route(
    'post',
    '/apps/{app}/channels/{channel}/models/{model}/releases/{version}/approve',
    'approveRelease',
    'operator',
    {
      summary: "Approve a release for the channel's production (who and when are recorded)",
      request: { params: ApproveParams },
      responses: {
        201: json(ApprovalSchema, 'Approved'),
        409: json(ErrorSchema, 'Approved already (E_CONFLICT), archived, or refused by policy (E_POLICY)'),
      },
      handler: async (c) => {
        const { version, ...ref } = c.req.valid('param');
        return c.json(await service.approve(actor(c), ref, version), 201);
      },
    },
  );

  route('get', '/releases/{model}/{version}/approvals', 'listApprovals', 'viewer', {
    summary: 'Every approval of a release, by app and channel',
    request: { params: ReleaseParams },
    responses: { 200: json(z.object({ approvals: z.array(ApprovalSchema) }), 'Approvals') },
    handler: async (c) => {
      const { model, version } = c.req.valid('param');
      return c.json({ approvals: await registry.listApprovals(model, version) }, 200);
    },
  });

  route('get', '/apps/{app}/channels/{channel}/policy', 'getChannelPolicy', 'viewer', {
    summary: "The channel's promotion policy (none set: no approval required)",
    request: { params: ChannelParams },
    responses: { 200: json(ChannelPolicyRecordSchema, 'Policy') },
    handler: async (c) => {
      const { app: appName, channel } = c.req.valid('param');
      const record = await registry.getChannelPolicy(appName, channel);
      return c.json(
        record ?? {
          app: appName,
          channel,
          policy: NO_POLICY,
          updatedBy: null,
          updatedAt: null,
        },
        200,
      );
    },
  });

  route('put', '/apps/{app}/channels/{channel}/policy', 'setChannelPolicy', 'admin', {
    summary: "Set the channel's promotion policy (audited)",
    request: { params: ChannelParams, ...jsonBody(ChannelPolicyBodySchema) },
    responses: { 200: json(ChannelPolicyRecordSchema, 'Policy set') },
    handler: async (c) => {
      const { app: appName, channel } = c.req.valid('param');
      return c.json(await service.setPolicy(actor(c), appName, channel, c.req.valid('json')), 200);
    },
  });
  return app;
}
