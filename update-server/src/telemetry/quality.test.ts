// Feedback and outcomes from apps over real HTTP on SQLite and PostgreSQL: ingest, the fleet API's live accuracy
// and outcome rates per release, the /metrics gauges, and the batches the server refuses.
import { seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { createTestSchema, type TestSchema } from '../storage/registry.suite.ts';
import { outcomeSummary } from './quality.ts';
import { makeBatch, makeRecord, postBatch, uniformMonitoring } from './testing.ts';

const MODEL = 'intent';
const LABELS = ['buy', 'browse', 'leave'];

interface Quality {
  labelled: number;
  correct: number;
  accuracy: number | null;
  labels: string[];
  confusion: number[][] | null;
  outcomes: Record<string, { count: number; mean: number | null; sd: number | null }>;
}

for (const dialect of ['sqlite', 'postgres'] as const)
  describe(`outcomes and ground truth from apps on ${dialect}`, () => {
    let t: TestServer;
    let schema: TestSchema | undefined;
    beforeAll(async () => {
      schema = dialect === 'postgres' ? await createTestSchema() : undefined;
      t = await startTestServer({ databaseUrl: schema?.url });
      for (const [i, version] of ['1.0.0', '1.1.0'].entries()) {
        await publish(t, seededBytes(4000, 7 + i), {
          model: MODEL,
          version,
          monitoring: { ...uniformMonitoring(), classes: { tensor: 'scores', labels: LABELS } },
        });
      }
      await publish(t, seededBytes(4000, 9), {
        model: 'plain',
        version: '1.0.0',
        monitoring: uniformMonitoring(),
      });
      await t.operator.promoteRelease('demo-app', 'stable', MODEL, '1.0.0');
    });
    afterAll(async () => {
      await t?.stop();
      await schema?.drop();
    });

    const quality = async (): Promise<Record<string, Quality>> => {
      const body = (await t.viewer.fleet({
        app: 'demo-app',
        channel: 'stable',
        model: MODEL,
      })) as unknown as {
        versions: Array<{ version: string; quality: Quality }>;
      };
      return Object.fromEntries(body.versions.map((v) => [v.version, v.quality]));
    };

    it('gives live accuracy, the confusion matrix and outcome rates per release, in the fleet API and /metrics', async () => {
      const record = (version: string, confusion: Array<[number, number, number]>, accepted: number[]) => ({
        ...makeRecord({ model: MODEL, version, latenciesMs: [3, 4, 5] }),
        quality: {
          confusion,
          outcomes: [
            {
              name: 'accepted',
              count: accepted.length,
              sum: accepted.reduce((a, b) => a + b, 0),
              sumSq: accepted.reduce((a, b) => a + b * b, 0),
            },
          ],
        },
      });
      // Two devices on 1.0.0 (8 of 10 right), one on 1.1.0 (9 of 10 right).
      for (const [device, rec] of [
        [
          'q-a',
          record(
            '1.0.0',
            [
              [0, 0, 3],
              [1, 1, 1],
              [2, 0, 1],
            ],
            [1, 0, 1],
          ),
        ],
        [
          'q-b',
          record(
            '1.0.0',
            [
              [1, 1, 2],
              [2, 2, 2],
              [0, 1, 1],
            ],
            [0, 0],
          ),
        ],
        [
          'q-c',
          record(
            '1.1.0',
            [
              [0, 0, 5],
              [1, 1, 4],
              [2, 1, 1],
            ],
            [1, 1, 1, 0],
          ),
        ],
      ] as const) {
        expect((await postBatch(t.server.url, makeBatch(device, [rec]))).status).toBe(202);
      }
      const q = await quality();
      expect(q['1.0.0']).toMatchObject({ labelled: 10, correct: 8, accuracy: 0.8, labels: LABELS });
      expect(q['1.0.0']!.confusion).toEqual([
        [3, 1, 0],
        [0, 3, 0],
        [1, 0, 2],
      ]);
      expect(q['1.0.0']!.outcomes.accepted).toEqual(outcomeSummary({ count: 5, sum: 2, sumSq: 2 }));
      expect(q['1.0.0']!.outcomes.accepted!.mean).toBeCloseTo(0.4, 12);
      expect(q['1.1.0']).toMatchObject({ labelled: 10, correct: 9, accuracy: 0.9 });
      expect(q['1.1.0']!.outcomes.accepted!.mean).toBeCloseTo(0.75, 12);

      const metrics = await (await fetch(`${t.server.url}/metrics`)).text();
      const labels = (version: string) =>
        `app="demo-app",channel="stable",model="${MODEL}",version="${version}"`;
      expect(metrics).toContain(`edgeship_model_accuracy{${labels('1.0.0')}} 0.8`);
      expect(metrics).toContain(`edgeship_model_accuracy{${labels('1.1.0')}} 0.9`);
      expect(metrics).toContain(`edgeship_model_feedback_labelled{${labels('1.0.0')}} 10`);
      expect(metrics).toContain(`edgeship_model_outcome_mean{${labels('1.1.0')},outcome="accepted"} 0.75`);
      expect(metrics).toContain(`edgeship_model_outcome_count{${labels('1.0.0')},outcome="accepted"} 5`);
    });

    it('refuses confusion counts outside the classes, on a release without classes, and impossible outcome sums', async () => {
      const withQuality = (model: string, quality: object) => ({
        ...makeRecord({ model, version: '1.0.0', latenciesMs: [3] }),
        quality,
      });
      const cases: Array<[string, object]> = [
        [MODEL, { confusion: [[3, 0, 1]] }], // three classes: 0..2
        [
          MODEL,
          {
            confusion: [
              [0, 0, 1],
              [0, 0, 2],
            ],
          },
        ], // one cell twice
        ['plain', { confusion: [[0, 0, 1]] }], // no classes, no decision
        [MODEL, { outcomes: [{ name: 'accepted', count: 2, sum: 4, sumSq: 1 }] }], // n·Σx² < (Σx)²
      ];
      for (const [model, q] of cases) {
        const answer = await postBatch(t.server.url, makeBatch('q-bad', [withQuality(model, q)]));
        expect(answer.status, JSON.stringify(q)).toBe(422);
      }
      // The schema's bounds: 33 classes cannot be named, nor 17 outcomes in one record.
      const outcomes = Array.from({ length: 17 }, (_, i) => ({ name: `o${i}`, count: 1, sum: 1, sumSq: 1 }));
      expect(
        (await postBatch(t.server.url, makeBatch('q-bad', [withQuality(MODEL, { outcomes })]))).status,
      ).toBe(400);
      expect(
        (await postBatch(t.server.url, makeBatch('q-bad', [withQuality(MODEL, { confusion: [[32, 0, 1]] })])))
          .status,
      ).toBe(400);
    });
  });
