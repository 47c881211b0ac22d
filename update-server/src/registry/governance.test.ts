import { seededBytes } from '@edgeship/protocol';
import { type AdminClient, governance } from '@edgeship/update-server';
import { afterAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { createTestSchema, type TestSchema } from '../storage/registry.suite.ts';

const APP = 'gov-app';
const CARD = {
  intendedUse: 'Voice activity on 16 kHz speech',
  limitations: 'Not evaluated on music',
  trainingData: 'LibriSpeech train-clean-100',
  evaluation: [{ metric: 'accuracy', value: 0.93, dataset: 'held-out-v2' }],
  segments: [{ segment: 'deviceClass=low', results: [{ metric: 'accuracy', value: 0.9 }] }],
};

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
      modelCard: CARD,
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
    expect(detail.signed.signed.modelCard).toEqual(CARD);
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
});
