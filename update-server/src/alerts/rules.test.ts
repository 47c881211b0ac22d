import { expect, it } from 'vitest';
import { emptyValues } from '../telemetry/aggregate.ts';
import { type AlertConfig, DEFAULT_ALERT_CONFIG, judge, measure } from './rules.ts';

const CONFIG: AlertConfig = { ...DEFAULT_ALERT_CONFIG, minSamples: 100, thresholds: { accuracyDrop: 0.05 } };

/** An aggregate holding the app's feedback as confusion counts (rows: label, columns: prediction). */
function withConfusion(matrix: number[][]) {
  const values = Object.assign(emptyValues(), { inferences: 1000 });
  matrix.forEach((row, actual) => {
    row.forEach((n, predicted) => {
      values.quality.confusion[`${actual},${predicted}`] = n;
    });
  });
  return values;
}

it('judges accuracy drop against the published accuracy once labelled counts exist', () => {
  // 160 of 200 right: 0.80 live against 0.90 published, a drop of 0.10.
  const worse = measure(
    withConfusion([
      [90, 10],
      [30, 70],
    ]),
    null,
    0.9,
  );
  expect(worse.accuracy).toEqual({ live: 0.8, labelled: 200, published: 0.9 });
  expect(judge(CONFIG, worse)).toEqual([
    { rule: 'accuracy-drop', status: 'breach', threshold: 0.05, value: expect.closeTo(0.1, 9), samples: 200 },
  ]);
  // 0.88 is within the margin.
  const fine = measure(
    withConfusion([
      [90, 10],
      [14, 86],
    ]),
    null,
    0.9,
  );
  expect(judge(CONFIG, fine)[0]).toMatchObject({ status: 'ok', samples: 200 });
});

it('leaves accuracy unjudged without labels, without a published accuracy, or with too few labels', () => {
  expect(judge(CONFIG, measure(emptyValues(), null, 0.9))[0]).toMatchObject({
    status: 'unknown',
    value: null,
  });
  expect(
    judge(
      CONFIG,
      measure(
        withConfusion([
          [90, 10],
          [30, 70],
        ]),
        null,
        null,
      ),
    )[0],
  ).toMatchObject({
    status: 'unknown',
  });
  expect(
    judge(
      CONFIG,
      measure(
        withConfusion([
          [9, 1],
          [3, 7],
        ]),
        null,
        0.9,
      ),
    )[0],
  ).toMatchObject({
    status: 'unknown',
    samples: 20,
  });
});
