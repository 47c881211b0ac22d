import {
  coded,
  countFeature,
  type MonitoredFeature,
  type MonitoringSpec,
  normalizeCounts,
  reduceFeature,
} from '@edgeship/protocol';
import { CliError } from '../commands/output.ts';
import type { ModelUnderTest } from '../validate/gates.ts';
import { type Carry, type Feeds, numbersOf } from '../validate/run-sequence.ts';
import type { Contract, ContractFeature } from './contract.ts';

/** A monitored feature the calibration data gives no finite value for: nothing to profile. */
export class ProfileError extends coded('E_PROFILE') {}

export const DEFAULT_BINS = 10;

export interface FeatureProfile {
  name: string;
  observations: number;
  min: number;
  max: number;
}

/**
 * The monitoring spec with each feature's reference distribution, measured by running the float
 * model (ONNX or tfjs) over the reference sequences and reducing each frame with the same
 * reduceFeature the device uses (so reference and field counts cannot drift apart through code).
 * `model` should run through the release's contract (release-runner.ts), as a device does: an
 * output feature is then read after postprocessing, an input feature from the caller's inputs.
 */
export async function profileMonitoring(
  model: ModelUnderTest,
  sequences: Feeds[][],
  contract: Contract,
): Promise<{ monitoring: MonitoringSpec; features: FeatureProfile[] }> {
  const declared = contract.monitoring.features;
  const values: number[][] = declared.map(() => []);
  if (declared.length > 0) {
    const runner = await model.load();
    try {
      for (const sequence of sequences) {
        const run = await runner.runSequence(sequence, contract.carry as Carry);
        run.outputs.forEach((outputs, f) => {
          declared.forEach((feature, i) => {
            const source = feature.source.from === 'input' ? (run.feeds?.[f] ?? sequence[f]!) : outputs;
            const tensor = source[feature.source.tensor];
            if (!tensor) {
              throw new CliError(
                `monitored feature ${feature.name}: the model has no ${feature.source.from} "${feature.source.tensor}"`,
              );
            }
            values[i]!.push(reduceFeature(feature.source.reduce, numbersOf(tensor)));
          });
        });
      }
    } finally {
      await runner.release();
    }
  }
  const features: MonitoredFeature[] = declared.map((feature, i) => referenceOf(feature, values[i]!));
  return {
    monitoring: {
      features,
      ...(contract.monitoring.decision ? { decision: contract.monitoring.decision } : {}),
    },
    features: declared.map((f, i) => {
      const finite = values[i]!.filter(Number.isFinite);
      return {
        name: f.name,
        observations: finite.length,
        min: finite.length ? Math.min(...finite) : Number.NaN,
        max: finite.length ? Math.max(...finite) : Number.NaN,
      };
    }),
  };
}

function referenceOf(feature: ContractFeature, values: number[]): MonitoredFeature {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) {
    throw new ProfileError(`monitored feature ${feature.name}: no finite value on the calibration data`);
  }
  const binEdges = feature.binEdges ?? quantileEdges(finite, feature.bins ?? DEFAULT_BINS);
  const counts = new Array<number>(binEdges.length + 1).fill(0);
  const built: MonitoredFeature = { name: feature.name, source: feature.source, binEdges, reference: [] };
  for (const v of finite) countFeature(counts, built, v);
  return { ...built, reference: normalizeCounts(counts) };
}

/**
 * Edges at the 1/bins, 2/bins, ... quantiles of sorted values, so each bin holds about the same
 * share of the reference data; duplicates (a feature that is often exactly 0) collapse, as edges
 * must ascend strictly.
 */
export function quantileEdges(sorted: readonly number[], bins: number): number[] {
  const edges: number[] = [];
  for (let k = 1; k < bins; k++) {
    const edge = sorted[Math.min(sorted.length - 1, Math.floor((k * sorted.length) / bins))]!;
    if (edges.length === 0 || edge > edges[edges.length - 1]!) edges.push(edge);
  }
  return edges.length > 0 ? edges : [sorted[0]!];
}
