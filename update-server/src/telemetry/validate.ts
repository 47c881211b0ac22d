import {
  classesOf,
  type MonitoringSpec,
  type TelemetryBatch,
  type TelemetryRecord,
} from '@edgeship/protocol';
import { UnprocessableError } from '../http/api-errors.ts';
import type { RegistryStore } from '../storage/types.ts';

/**
 * Monitoring specs of published releases, cached: releases are immutable, so a spec once read
 * never changes. Unknown releases are not cached (one may be published a moment later).
 */
export class ReleaseCatalog {
  private readonly specs = new Map<string, MonitoringSpec>();

  constructor(private readonly registry: RegistryStore) {}

  async monitoring(model: string, version: string): Promise<MonitoringSpec | null> {
    const cached = this.cached(model, version);
    if (cached) return cached;
    const id = `${model}@${version}`;
    const record = await this.registry.getRelease(model, version);
    if (!record) return null;
    const spec = record.signed.signed.monitoring;
    this.specs.set(id, spec);
    return spec;
  }

  /** The spec if it has been read before: no promise to settle, as on the ingest path for nearly every record. */
  cached(model: string, version: string): MonitoringSpec | undefined {
    return this.specs.get(`${model}@${version}`);
  }
}

const unprocessable = (message: string) => new UnprocessableError(message);

/**
 * Checks what the schema cannot: the releases exist, feature counts use the release's bins, and
 * the numbers are consistent. A failure is permanent (422): the device drops the batch.
 */
export async function checkBatchSemantics(batch: TelemetryBatch, catalog: ReleaseCatalog): Promise<void> {
  if (Date.parse(batch.windowEnd) < Date.parse(batch.windowStart)) {
    throw unprocessable('windowEnd is before windowStart');
  }
  for (const [i, record] of batch.records.entries()) {
    const at = `records.${i}`;
    const spec =
      catalog.cached(record.model, record.version) ??
      (await catalog.monitoring(record.model, record.version));
    if (!spec) throw unprocessable(`${at}: unknown release ${record.model}@${record.version}`);
    const names = new Set<string>();
    for (const feature of record.features) {
      if (names.has(feature.name)) throw unprocessable(`${at}: feature ${feature.name} appears twice`);
      names.add(feature.name);
      const monitored = spec.features.find((f) => f.name === feature.name);
      if (!monitored) {
        throw unprocessable(
          `${at}: ${record.model}@${record.version} does not monitor a feature ${feature.name}`,
        );
      }
      if (feature.counts.length !== monitored.binEdges.length + 1) {
        throw unprocessable(
          `${at}: feature ${feature.name} has ${feature.counts.length} bins, the release has ${monitored.binEdges.length + 1}`,
        );
      }
    }
    if (record.shadow && record.shadow.agreements > record.shadow.compared) {
      throw unprocessable(`${at}: more agreements than comparisons`);
    }
    if (record.quality) checkQuality(`${at}.quality`, record, spec);
  }
}

/** Confusion cells name the release's classes, once each; outcome sums are ones some values could give. */
function checkQuality(at: string, record: TelemetryRecord, spec: MonitoringSpec): void {
  const { confusion = [], outcomes = [] } = record.quality!;
  if (confusion.length > 0) {
    const classes = classesOf(spec);
    if (!classes) throw unprocessable(`${at}: ${record.model}@${record.version} is no classifier`);
    const cells = new Set<string>();
    for (const [actual, predicted] of confusion) {
      if (actual >= classes.labels.length || predicted >= classes.labels.length) {
        throw unprocessable(`${at}: class index out of range (${classes.labels.length} classes)`);
      }
      const cell = `${actual},${predicted}`;
      if (cells.has(cell)) throw unprocessable(`${at}: confusion cell ${cell} appears twice`);
      cells.add(cell);
    }
  }
  const names = new Set<string>();
  for (const o of outcomes) {
    if (names.has(o.name)) throw unprocessable(`${at}: outcome ${o.name} appears twice`);
    names.add(o.name);
    // Cauchy-Schwarz: n·Σx² ≥ (Σx)²; a count of 0 has sums of 0.
    const slack = 1e-9 * (o.sum * o.sum + 1);
    if (o.sumSq * o.count + slack < o.sum * o.sum || (o.count === 0 && (o.sum !== 0 || o.sumSq !== 0))) {
      throw unprocessable(`${at}: outcome ${o.name}'s sums are inconsistent`);
    }
  }
}
