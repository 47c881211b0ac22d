import {
  type Backend,
  type ClassSpec,
  classesOf,
  classIndex,
  InputError,
  MAX_OUTCOME_VALUE,
  predictedClass,
  type Release,
} from '@edgeship/protocol';
import type { NamedTensors } from '../engines/tensor.ts';
import type { TelemetryCollector } from '../telemetry/collector.ts';
import type { LoadedModel } from './model-slot.ts';

/** How many predictions late feedback can still find (the oldest are forgotten first). */
export const PREDICTION_CAPACITY = 10_000;

/** Which release answered, and what it predicted (a class index, when it is a classifier). */
interface Prediction {
  key: { model: string; version: string; backend: Backend; role: 'active' };
  classes: ClassSpec | null;
  predicted: number | null;
}

/** What `feedback` did: counted, or why not (a prediction forgotten or never made here). */
export interface FeedbackResult {
  recorded: boolean;
  reason?: 'unknown-prediction' | 'not-a-classifier' | 'no-prediction';
}

/** The models this worker runs now (activation.ts): what an outcome without a prediction id is for. */
export interface LoadedModels {
  names(): string[];
  loaded(name: string): LoadedModel | undefined;
}

export interface OutcomeOptions {
  /** Attribute to the release that made this prediction (else to the model's loaded release). */
  predictionId?: string;
  /** The model whose loaded release the outcome is for (needed when several are loaded). */
  model?: string;
}

/**
 * Prediction ids of recent runs, in memory, bounded (least recently used first out), so that
 * feedback that arrives later (after an activation switched releases) is still counted for the
 * release that made the prediction. Nothing of the input is kept: the release and its class.
 */
export class PredictionBook {
  private readonly entries = new Map<string, Prediction>();
  private readonly prefix = crypto.randomUUID().slice(0, 8);
  private serial = 0;
  private readonly classCache = new WeakMap<Release, ClassSpec | null>();

  constructor(
    private readonly collector: TelemetryCollector | undefined,
    private readonly capacity = PREDICTION_CAPACITY,
  ) {}

  /** Remembers one successful run; returns its id. */
  add(release: Release, backend: Backend, outputs: NamedTensors): string {
    let classes = this.classCache.get(release);
    if (classes === undefined) {
      classes = classesOf(release.monitoring);
      this.classCache.set(release, classes);
    }
    const id = `${this.prefix}-${(this.serial++).toString(36)}`;
    this.entries.set(id, {
      key: { model: release.model, version: release.version, backend, role: 'active' },
      classes,
      predicted: classes ? predictedClass(classes, outputs[classes.tensor]?.data) : null,
    });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return id;
  }

  /** The app's ground truth for one prediction: a confusion count for the release that made it. */
  feedback(predictionId: string, label: string | number | boolean): FeedbackResult {
    const entry = this.touch(predictionId);
    if (!entry) return { recorded: false, reason: 'unknown-prediction' };
    if (!entry.classes) return { recorded: false, reason: 'not-a-classifier' };
    const actual = classIndex(entry.classes, label);
    if (actual === null) {
      throw new InputError(
        `label ${JSON.stringify(label)} is none of ${entry.key.model}@${entry.key.version}'s classes (${entry.classes.labels.join(', ')})`,
      );
    }
    if (entry.predicted === null) return { recorded: false, reason: 'no-prediction' };
    this.collector?.recordFeedback(entry.key, actual, entry.predicted);
    return { recorded: true };
  }

  /** A named outcome for the release that made `predictionId`; false when that prediction is forgotten. */
  outcomeFor(predictionId: string, name: string, value: number): FeedbackResult {
    const entry = this.touch(predictionId);
    if (!entry) return { recorded: false, reason: 'unknown-prediction' };
    return { recorded: this.collector?.recordOutcome(entry.key, name, checkedValue(name, value)) ?? false };
  }

  /**
   * A named outcome (`accepted`, `converted`): for the release that made `options.predictionId`,
   * else for the loaded release of `options.model` (or of the one model loaded).
   */
  outcome(
    running: LoadedModels,
    name: string,
    value: number | boolean,
    options: OutcomeOptions,
  ): FeedbackResult {
    const v = checkedValue(name, value);
    if (options.predictionId) return this.outcomeFor(options.predictionId, name, v);
    const names = options.model ? [options.model] : running.names();
    const model = names.length === 1 ? running.loaded(names[0]!) : undefined;
    if (!model) {
      throw new InputError(
        options.model
          ? `model ${options.model} is not loaded: load it before reporting its outcomes`
          : `${names.length} models are loaded: name the model (or a prediction id) of outcome ${name}`,
      );
    }
    const key = {
      model: model.release.model,
      version: model.release.version,
      backend: model.backend.chosen.backend,
      role: 'active' as const,
    };
    return { recorded: this.collector?.recordOutcome(key, name, v) ?? false };
  }

  private touch(predictionId: string): Prediction | undefined {
    const entry = this.entries.get(predictionId);
    if (entry) {
      // Least recently used first out: a prediction the app still talks about stays.
      this.entries.delete(predictionId);
      this.entries.set(predictionId, entry);
    }
    return entry;
  }
}

const OUTCOME_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** An outcome's value, refused (E_INPUT) when it is not a bounded finite number or its name not a plain name. */
export function checkedValue(name: string, value: number | boolean): number {
  if (typeof name !== 'string' || !OUTCOME_NAME.test(name)) {
    throw new InputError(`outcome name ${JSON.stringify(name)} must match ${OUTCOME_NAME}`);
  }
  const v = typeof value === 'boolean' ? (value ? 1 : 0) : value;
  if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > MAX_OUTCOME_VALUE) {
    throw new InputError(`outcome ${name} must be a finite number within ±${MAX_OUTCOME_VALUE} or a boolean`);
  }
  return v;
}
