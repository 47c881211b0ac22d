import { EdgeshipError, type Release } from '@edgeship/protocol';
import type { Engine } from '../engines/engine.ts';
import { runWithContract } from '../engines/pipeline.ts';
import { hasNonFinite, sampleInputs } from '../engines/tensor.ts';
import type { ModelStore } from '../store/model-store.ts';
import { ActivationError } from './activation-error.ts';
import type { BackendReport, EngineStartStep, RuntimeConfig } from './config.ts';
import { openEngine, type ReleaseBytes, readReleaseBytes, startEngineEarly } from './open-engine.ts';

/**
 * Opens a stored release on an engine and health-checks it. Each step's failure is an
 * ActivationError naming the step (read, engine, health check): it decides whether the failure
 * heals (failure-policy.ts).
 */
export async function openRelease(
  store: ModelStore,
  id: string,
  config: RuntimeConfig,
  opts: { healthCheck: boolean; onStep?: (release: Release, step: EngineStartStep) => void },
): Promise<{ release: Release; engine: Engine; backend: BackendReport }> {
  const installed = await store.getRelease(id);
  if (!installed?.complete) throw new ActivationError('read', `${id} is not installed`);
  const release = installed.signed.signed;
  const onStep = (step: EngineStartStep) => opts.onStep?.(release, step);
  onStep('read');
  // ORT starts while the bytes are read (a first load started it when its download began).
  void startEngineEarly(store, release, config);
  let files: ReleaseBytes;
  try {
    files = await readReleaseBytes(store, id, release);
  } catch (error) {
    if (error instanceof EdgeshipError && (error.code === 'E_HASH' || error.code === 'E_LENGTH')) {
      // Corrupt stored bytes: drop them, so once the refusal lifts only they are downloaded again.
      await store.dropCorruptChunks(id).catch(() => {});
    }
    throw new ActivationError('read', `${id} cannot be read: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let opened: Awaited<ReturnType<typeof openEngine>>;
  try {
    opened = await openEngine(store, id, release, files, config, onStep);
  } catch (error) {
    throw new ActivationError('engine', `${id} failed to load: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const { engine, backend } = opened;
  if (opts.healthCheck) {
    try {
      // The same path callers take (schema check, preprocessing, engine, postprocessing).
      const bad = hasNonFinite(await runWithContract(engine, release, sampleInputs(release.inputs)));
      if (bad) {
        throw new ActivationError('health-check', `${id} produced non-finite values in ${bad}`, {
          backend: backend.chosen.backend,
        });
      }
    } catch (error) {
      await engine.dispose().catch(() => {});
      if (error instanceof ActivationError) throw error;
      throw new ActivationError(
        'health-check',
        `${id} failed its health check: ${(error as Error).message}`,
        { cause: error, backend: backend.chosen.backend },
      );
    }
  }
  return { release, engine, backend };
}
