import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminClient, type RunningServer } from '@edgeship/update-server';
import { publishModel } from '../../cli/src/publish/publish.ts';
import { TONE_CONTRACT, TONE_MODEL, writeToneCalibration } from '../../demo-pwa/models/tone/calibration.ts';

export const DEMO_APP = 'demo';
export const DEMO_CHANNEL = 'stable';

interface DemoRelease {
  name: string;
  version: string;
  model: string;
  quantize: 'int8' | 'uint8' | 'float16' | 'none';
  contract: string;
  /** A calibration directory, or a function that writes one into the directory it is given. */
  calibration?: string | ((dir: string) => Promise<unknown>);
  modelCard?: string;
  /** Production right away, or a canary at this percentage of devices. */
  target: 'production' | { canaryPercent: number };
}

function demoReleases(repo: string): DemoRelease[] {
  const silero = join(repo, 'node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
  const vad = {
    name: 'vad',
    model: silero,
    contract: join(repo, 'demo-pwa/publish/vad.contract.json'),
    calibration: join(repo, 'cli/test-data'),
    modelCard: join(repo, 'demo-pwa/publish/vad.model-card.md'),
  };
  const releases: DemoRelease[] = [
    { ...vad, version: '1.0.0', quantize: 'int8', target: 'production' },
    // A second release on a 10% canary, so the dashboard has a rollout to show from the start.
    { ...vad, version: '1.1.0', quantize: 'float16', target: { canaryPercent: 10 } },
  ];
  if (existsSync(TONE_MODEL) && existsSync(TONE_CONTRACT)) {
    releases.push({
      name: 'tone',
      version: '1.0.0',
      model: TONE_MODEL,
      quantize: 'uint8',
      contract: TONE_CONTRACT,
      // Labelled examples from the generator the model was trained on (another seed): the uint8
      // model is run against the float one through the same gates as ONNX.
      calibration: writeToneCalibration,
      target: 'production',
    });
  }
  return releases;
}

/**
 * Publishes the demo's releases through the same pipeline `edgeship publish` runs (quantize,
 * validate, profile, sign, upload, register), once: a release already in the registry is kept.
 */
export async function publishDemoModels(
  server: RunningServer,
  opts: { repo: string; keysDir: string; say: (line: string) => void },
): Promise<string[]> {
  const { repo, say } = opts;
  const tokens = server.tokens;
  const publisherKey = join(opts.keysDir, 'publisher.key.json');
  const published: string[] = [];
  for (const demo of demoReleases(repo)) {
    if (await server.registry.getRelease(demo.name, demo.version)) continue;
    if (!tokens)
      throw new Error('the bootstrap tokens file is gone from the data directory: cannot publish the demo');
    if (!existsSync(publisherKey))
      throw new Error(`no publisher key at ${publisherKey}: cannot publish the demo`);
    say(`start: publishing ${demo.name}@${demo.version} (${demo.quantize})`);
    const result = await withCalibration(demo, (calibration) =>
      publishModel({
        model: demo.model,
        name: demo.name,
        version: demo.version,
        quantize: demo.quantize,
        contract: demo.contract,
        calibration,
        modelCard: demo.modelCard,
        server: server.url,
        token: tokens.publisher,
        operatorToken: tokens.operator,
        publisherKey,
        app: DEMO_APP,
        channel: DEMO_CHANNEL,
        rollout: demo.target === 'production' ? 100 : demo.target.canaryPercent,
        mode: 'canary',
      }),
    );
    if (demo.target === 'production' && result.rollout) {
      await new AdminClient(server.url, tokens.operator).promote(result.rollout.id);
    }
    published.push(result.release);
  }
  return published;
}

/** Runs `publish` with the release's calibration directory, writing a generated one to a temp dir. */
async function withCalibration<T>(
  demo: DemoRelease,
  publish: (calibration: string | undefined) => Promise<T>,
): Promise<T> {
  if (typeof demo.calibration !== 'function') return publish(demo.calibration);
  const dir = await mkdtemp(join(tmpdir(), 'edgeship-calibration-'));
  try {
    await demo.calibration(dir);
    return await publish(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
