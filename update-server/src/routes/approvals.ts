import { z } from '@hono/zod-openapi';
import type { RequireRole } from '../auth/middleware.ts';
import type { RegistryService } from '../registry/service.ts';
import type { RegistryStore } from '../storage/types.ts';
import { actor, adminRoutes, json, jsonBody } from './admin-route.ts';
import {
  ApprovalSchema,
  ApproveParams,
  ChannelPolicyBodySchema,
  ChannelPolicyRecordSchema,
  ErrorSchema,
  ReleaseParams,
} from './api-schemas.ts';
import { Name } from './wire-schemas.ts';

export interface ApprovalRouteDeps {
  registry: RegistryStore;
  service: RegistryService;
  requireRole: RequireRole;
}

/**
 * Approvals of a release for a channel's production (operator), and each channel's policy on
 * them (admin sets, viewer reads). Refusals answer E_POLICY and are in the audit trail.
 */
export function createApprovalRoutes(deps: ApprovalRouteDeps) {
  const { registry, service } = deps;
  const { app, route } = adminRoutes(deps.requireRole);

  app.openapi(
    route({
      operationId: 'approveRelease',
      method: 'post',
      path: '/apps/{app}/channels/{channel}/models/{model}/releases/{version}/approve',
      summary: "Approve a release for the channel's production (who and when are recorded)",
      role: 'operator',
      request: { params: ApproveParams },
      responses: {
        201: json(ApprovalSchema, 'Approved'),
        409: json(ErrorSchema, 'Approved already (E_CONFLICT), archived, or refused by policy (E_POLICY)'),
      },
    }),
    async (c) => {
      const { version, ...ref } = c.req.valid('param');
      return c.json(await service.approve(actor(c), ref, version), 201);
    },
  );

  app.openapi(
    route({
      operationId: 'listApprovals',
      method: 'get',
      path: '/releases/{model}/{version}/approvals',
      summary: 'Every approval of a release, by app and channel',
      role: 'viewer',
      request: { params: ReleaseParams },
      responses: { 200: json(z.object({ approvals: z.array(ApprovalSchema) }), 'Approvals') },
    }),
    async (c) => {
      const { model, version } = c.req.valid('param');
      return c.json({ approvals: await registry.listApprovals(model, version) }, 200);
    },
  );

  const ChannelParams = z.object({ app: Name, channel: Name });

  app.openapi(
    route({
      operationId: 'getChannelPolicy',
      method: 'get',
      path: '/apps/{app}/channels/{channel}/policy',
      summary: "The channel's promotion policy (none set: no approval required)",
      role: 'viewer',
      request: { params: ChannelParams },
      responses: { 200: json(ChannelPolicyRecordSchema, 'Policy') },
    }),
    async (c) => {
      const { app: appName, channel } = c.req.valid('param');
      const record = await registry.getChannelPolicy(appName, channel);
      return c.json(
        record ?? {
          app: appName,
          channel,
          policy: { requireApproval: false, approverNotPublisher: false },
          updatedBy: null,
          updatedAt: null,
        },
        200,
      );
    },
  );

  app.openapi(
    route({
      operationId: 'setChannelPolicy',
      method: 'put',
      path: '/apps/{app}/channels/{channel}/policy',
      summary: "Set the channel's promotion policy (audited)",
      role: 'admin',
      request: { params: ChannelParams, ...jsonBody(ChannelPolicyBodySchema) },
      responses: { 200: json(ChannelPolicyRecordSchema, 'Policy set') },
    }),
    async (c) => {
      const { app: appName, channel } = c.req.valid('param');
      return c.json(await service.setPolicy(actor(c), appName, channel, c.req.valid('json')), 200);
    },
  );
  return app;
}
