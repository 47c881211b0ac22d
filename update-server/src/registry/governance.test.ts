import { GATE_VS_PRODUCTION, type Release, seededBytes } from '@edgeship/protocol';
import { type AdminClient, governance } from '@edgeship/update-server';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_MODEL_CARD } from '../../../test/support/model-card.ts';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { createTestSchema, type TestSchema } from '../storage/registry.suite.ts';

const APP = 'gov-app';
/** Stage, approval and policy behaviour over real HTTP, on each database the server runs on. */
describe.each([
  ['SQLite', async () => ({ opts: {}, drop: async () => {} })],
  [
    'PostgreSQL',
    async () => {
      const schema: TestSchema = await createTestSchema();
      return { opts: { databaseUrl: schema.url }, drop: () => schema.drop() };
    },
  ],
])('registry governance on %s', (_name, backend) => {
  let t: TestServer | undefined;
  let drop = async () => {};
  const server = async () => {
    if (!t) {
      const b = await backend();
      drop = b.drop;
      t = await startTestServer(b.opts);
    }
    return t;
  };
  afterAll(async () => {
    await t?.stop();
    await drop();
  });

  async function stageOf(viewer: AdminClient, model: string, version: string) {
    return (await viewer.getRelease(model, version)).stage;
  }

  it('promotion archives the replaced release; rollback archives the rolled-back one', async () => {
    const s = await server();
    await publish(s, seededBytes(64, 1), { model: 'stages', version: '1.0.0' });
    await publish(s, seededBytes(64, 2), {
      model: 'stages',
      version: '1.1.0',
      modelCard: TEST_MODEL_CARD,
      lineage: {
        trainingCode: 'git:abc123',
        data: 'sha256:ff00',
        hyperparameters: { lr: 0.01 },
        parent: '1.0.0',
      },
    });
    expect(await stageOf(s.viewer, 'stages', '1.0.0')).toBe('staging');

    await s.operator.promoteRelease(APP, 'stable', 'stages', '1.0.0');
    expect(await stageOf(s.viewer, 'stages', '1.0.0')).toBe('production');

    const rollout = await s.operator.createRollout({
      app: APP,
      channel: 'stable',
      model: 'stages',
      release: '1.1.0',
      shareBps: 1000,
    });
    await s.operator.promote(rollout.id);
    expect(await stageOf(s.viewer, 'stages', '1.1.0')).toBe('production');
    expect(await stageOf(s.viewer, 'stages', '1.0.0')).toBe('archived');

    await s.operator.rollback(APP, 'stable', 'stages', 'regression seen by support');
    expect(await stageOf(s.viewer, 'stages', '1.0.0')).toBe('production');
    expect(await stageOf(s.viewer, 'stages', '1.1.0')).toBe('archived');

    // The card and the lineage travel in the signed document.
    const detail = await s.viewer.getRelease('stages', '1.1.0');
    expect(detail.signed.signed.modelCard).toEqual(TEST_MODEL_CARD);
    expect(detail.signed.signed.lineage?.parent).toBe('1.0.0');
  });

  it('a release served by another channel stays production when one channel moves on', async () => {
    const s = await server();
    await publish(s, seededBytes(64, 3), { model: 'shared', version: '1.0.0' });
    await publish(s, seededBytes(64, 4), { model: 'shared', version: '2.0.0' });
    await s.operator.promoteRelease(APP, 'stable', 'shared', '1.0.0');
    await s.operator.promoteRelease(APP, 'beta', 'shared', '1.0.0');
    await s.operator.promoteRelease(APP, 'beta', 'shared', '2.0.0');
    expect(await stageOf(s.viewer, 'shared', '1.0.0')).toBe('production');
  });

  it('a parent that is not registered is refused', async () => {
    const s = await server();
    await expect(
      publish(s, seededBytes(64, 5), { model: 'orphan', version: '1.0.0', lineage: { parent: '0.9.0' } }),
    ).rejects.toMatchObject({ code: 'E_VALIDATION', status: 422 });
  });

  it('widening a rollout is held to the policy as promotion is; each refusal is audited', async () => {
    const s = await server();
    const gov = (c: AdminClient) => governance(c);
    // Bob publishes; he also holds an operator token (the same name: the same person).
    const { AdminClient: Client } = await import('@edgeship/update-server');
    const bobAs = async (role: string) =>
      new Client(s.server.url, (await s.admin.createToken({ name: 'bob', role })).token);
    const [bobPublisher, bobOperator] = [await bobAs('publisher'), await bobAs('operator')];
    await publish(s, seededBytes(64, 7), { model: 'widen', version: '1.0.0' });
    await publish({ ...s, publisher: bobPublisher }, seededBytes(64, 8), {
      model: 'widen',
      version: '1.1.0',
    });
    await s.operator.promoteRelease(APP, 'widen', 'widen', '1.0.0');
    const rollout = await s.operator.createRollout({
      app: APP,
      channel: 'widen',
      model: 'widen',
      release: '1.1.0',
      shareBps: 100,
    });
    await gov(s.admin).setPolicy(APP, 'widen', { requireApproval: true, approverNotPublisher: false });

    // Unapproved: widening refused, narrowing allowed.
    await expect(s.operator.setShare(rollout.id, 1000)).rejects.toMatchObject({
      code: 'E_POLICY',
      status: 409,
    });
    expect((await s.operator.setShare(rollout.id, 50)).shareBps).toBe(50);

    // Approved by its own publisher while the policy allowed it; then the policy asks for four eyes.
    await gov(bobOperator).approve(APP, 'widen', 'widen', '1.1.0');
    expect((await s.operator.setShare(rollout.id, 500)).shareBps).toBe(500);
    await gov(s.admin).setPolicy(APP, 'widen', { requireApproval: true, approverNotPublisher: true });
    await expect(s.operator.setShare(rollout.id, 1000)).rejects.toMatchObject({ code: 'E_POLICY' });
    await expect(s.operator.promote(rollout.id)).rejects.toMatchObject({ code: 'E_POLICY' });
    expect((await s.viewer.getRollout(rollout.id)).shareBps).toBe(500);

    const { entries } = await s.viewer.audit({ app: APP, channel: 'widen', model: 'widen' });
    const refused = entries.filter((e) => e.action === 'policy.refused').reverse();
    expect(refused.map((e) => e.details)).toMatchObject([
      { attempted: 'rollout.share', rolloutId: rollout.id, from: 100, to: 1000, version: '1.1.0' },
      { attempted: 'rollout.share', from: 500, to: 1000, publisher: 'bob' },
      { attempted: 'rollout.promote', publisher: 'bob' },
    ]);
  });

  it('a four-eyes policy refuses the publisher approving their own release, and audits the refusal', async () => {
    const s = await server();
    const gov = (c: AdminClient) => governance(c);
    await gov(s.admin).setPolicy(APP, 'prod', { requireApproval: true, approverNotPublisher: true });
    // Alice holds a publisher token and an operator token: the same name, so the same person.
    const { AdminClient: Client } = await import('@edgeship/update-server');
    const aliceAs = async (role: string) =>
      new Client(s.server.url, (await s.admin.createToken({ name: 'alice', role })).token);
    const [alicePublisher, aliceOperator] = [await aliceAs('publisher'), await aliceAs('operator')];
    await publish({ ...s, publisher: alicePublisher }, seededBytes(64, 6), {
      model: 'foureyes',
      version: '1.0.0',
    });

    // Unapproved: promotion refused.
    await expect(s.operator.promoteRelease(APP, 'prod', 'foureyes', '1.0.0')).rejects.toMatchObject({
      code: 'E_POLICY',
      status: 409,
    });

    // The publisher may not approve their own release.
    await expect(gov(aliceOperator).approve(APP, 'prod', 'foureyes', '1.0.0')).rejects.toMatchObject({
      code: 'E_POLICY',
    });
    expect((await gov(s.viewer).approvals('foureyes', '1.0.0')).approvals).toEqual([]);

    // Somebody else approves: recorded with who and when, and promotion goes through.
    const before = Date.now();
    const approval = await gov(s.operator).approve(APP, 'prod', 'foureyes', '1.0.0');
    const { name: operatorName } = await s.operator.whoami();
    expect(approval.approver).toBe(operatorName);
    expect(Date.parse(approval.approvedAt)).toBeGreaterThanOrEqual(before - 1000);
    await expect(gov(s.operator).approve(APP, 'prod', 'foureyes', '1.0.0')).rejects.toMatchObject({
      code: 'E_CONFLICT',
    });
    await s.operator.promoteRelease(APP, 'prod', 'foureyes', '1.0.0');
    expect(await stageOf(s.viewer, 'foureyes', '1.0.0')).toBe('production');

    const { entries } = await s.viewer.audit({ app: APP, channel: 'prod', model: 'foureyes' });
    const actions = entries.map((e) => e.action).reverse();
    expect(actions).toEqual(['policy.refused', 'policy.refused', 'release.approve', 'release.promote']);
    expect(entries.find((e) => e.action === 'policy.refused' && e.actor === 'alice')?.details).toMatchObject({
      attempted: 'release.approve',
      version: '1.0.0',
    });
  });

  it('a policy requiring the gate against production refuses a release without it, and audits it', async () => {
    const s = await server();
    const channel = 'gated';
    await governance(s.admin).setPolicy(APP, channel, {
      requireApproval: false,
      approverNotPublisher: false,
      requireGates: [GATE_VS_PRODUCTION],
    });
    expect((await governance(s.viewer).policy(APP, channel)).policy.requireGates).toEqual([
      GATE_VS_PRODUCTION,
    ]);
    const gated = (against: string | null): Release['gates'] => ({
      dataset: 'ab'.repeat(32),
      frames: 40,
      results: [
        { name: 'min-accuracy', value: 0.95, limit: 0.9 },
        { name: GATE_VS_PRODUCTION, value: against ? 0 : null, limit: 0.01 },
      ],
      against: { app: APP, channel, version: against },
    });
    // The channel's first release: gated against "no production", so it may go in.
    await publish(s, seededBytes(64, 20), { model: 'gated', version: '1.0.0', gates: gated(null) });
    await s.operator.promoteRelease(APP, channel, 'gated', '1.0.0');

    // No gates recorded: promotion, a rollout's start and its widening are all refused.
    await publish(s, seededBytes(64, 21), { model: 'gated', version: '1.1.0' });
    await expect(s.operator.promoteRelease(APP, channel, 'gated', '1.1.0')).rejects.toMatchObject({
      code: 'E_POLICY',
      status: 409,
    });
    const ref = { app: APP, channel, model: 'gated', release: '1.1.0' };
    await expect(s.operator.createRollout({ ...ref, shareBps: 500 })).rejects.toMatchObject({
      code: 'E_POLICY',
    });
    const idle = await s.operator.createRollout({ ...ref, shareBps: 0 });
    await expect(s.operator.setShare(idle.id, 1000)).rejects.toMatchObject({ code: 'E_POLICY' });
    await expect(s.operator.promote(idle.id)).rejects.toMatchObject({ code: 'E_POLICY' });
    expect((await s.viewer.getRollout(idle.id)).shareBps).toBe(0);
    expect(await stageOf(s.viewer, 'gated', '1.1.0')).toBe('staging');

    // Gated against what the channel serves: started, widened and promoted.
    await publish(s, seededBytes(64, 22), { model: 'gated', version: '1.2.0', gates: gated('1.0.0') });
    const rollout = await s.operator.createRollout({ ...ref, release: '1.2.0', shareBps: 500 });
    await s.operator.setShare(rollout.id, 5000);
    await s.operator.promote(rollout.id);
    expect(await stageOf(s.viewer, 'gated', '1.2.0')).toBe('production');

    // Gated against a production release since replaced: stale, refused.
    await publish(s, seededBytes(64, 23), { model: 'gated', version: '1.3.0', gates: gated('1.0.0') });
    await expect(s.operator.promoteRelease(APP, channel, 'gated', '1.3.0')).rejects.toMatchObject({
      code: 'E_POLICY',
      message: expect.stringMatching(/gated against production 1\.0\.0, the channel serves 1\.2\.0/),
    });

    const { entries } = await s.viewer.audit({ app: APP, channel, model: 'gated' });
    const refused = entries.filter((e) => e.action === 'policy.refused').reverse();
    expect(refused.map((e) => e.details.attempted)).toEqual([
      'release.promote',
      'rollout.create',
      'rollout.share',
      'rollout.promote',
      'release.promote',
    ]);
    expect(refused[0]!.details).toMatchObject({
      version: '1.1.0',
      requireGates: [GATE_VS_PRODUCTION],
      gatesRun: [],
    });
  });
});
