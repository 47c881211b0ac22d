import { EdgeshipError, type Release } from '@edgeship/protocol';
import type { Engine } from '../engines/engine.ts';
import { runWithContract } from '../engines/pipeline.ts';
import { hasNonFinite, sampleInputs } from '../engines/tensor.ts';
import type { ModelStore } from '../store/model-store.ts';
import type { BackendReport, RuntimeConfig } from './config.ts';
import { ActivationError } from './failure-policy.ts';
import { openEngine, type ReleaseBytes, readReleaseBytes } from './open-engine.ts';

/**
 * Opens a stored release on an engine and health-checks it. Each step's failure is an
 * ActivationError naming the step (read, engine, health check): it decides whether the failure
 * heals (failure-policy.ts).
 */
export async function openRelease(
  store: ModelStore,
  id: string,
  config: RuntimeConfig,
  opts: { healthCheck: boolean },
): Promise<{ release: Release; engine: Engine; backend: BackendReport }> {
  const installed = await store.getRelease(id);
  if (!installed?.complete) throw new ActivationError('E_NOT_FOUND', `${id} is not installed`, 'read');
  const release = installed.signed.signed;
  let files: ReleaseBytes;
  try {
    files = await readReleaseBytes(store, id, release);
  } catch (error) {
    if (error instanceof EdgeshipError && error.code === 'E_HASH') {
      // Corrupt stored bytes: drop them, so once the refusal lifts only they are downloaded again.
      await store.dropCorruptChunks(id).catch(() => {});
    }
    const code = error instanceof EdgeshipError ? error.code : 'E_NOT_FOUND';
    throw new ActivationError(code, `${id} cannot be read: ${(error as Error).message}`, 'read', {
      cause: error,
    });
  }
  let opened: Awaited<ReturnType<typeof openEngine>>;
  try {
    opened = await openEngine(store, id, release, files, config);
  } catch (error) {
    throw new ActivationError(
      'E_HEALTH_CHECK',
      `${id} failed to load: ${(error as Error).message}`,
      'engine',
      {
        cause: error,
      },
    );
  }
  const { engine, backend } = opened;
  if (opts.healthCheck) {
    try {
      // The same path callers take (schema check, preprocessing, engine, postprocessing).
      const bad = hasNonFinite(await runWithContract(engine, release, sampleInputs(release.inputs)));
      if (bad) {
        throw new ActivationError(
          'E_HEALTH_CHECK',
          `${id} produced non-finite values in ${bad}`,
          'health-check',
          { backend: backend.chosen.backend },
        );
      }
    } catch (error) {
      await engine.dispose().catch(() => {});
      if (error instanceof ActivationError) throw error;
      throw new ActivationError(
        'E_HEALTH_CHECK',
        `${id} failed its health check: ${(error as Error).message}`,
        'health-check',
        { cause: error, backend: backend.chosen.backend },
      );
    }
  }
  return { release, engine, backend };
}
