import type { UploadProgress } from '@edgeship/update-server/admin-client';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { type PublishOptions, publishModel, type Quantize } from '../publish/publish.ts';
import { GateError } from '../validate/gate-error.ts';
import { CliError, type OutputOptions, print } from './output.ts';
import { parseNumber, withServer } from './server-flags.ts';

interface PublishFlags extends OutputOptions {
  name: string;
  version: string;
  format?: 'onnx' | 'tfjs';
  quantize: Quantize;
  calibration?: string;
  gateData?: string;
  referenceData?: string;
  root?: string;
  contract: string;
  server?: string;
  token?: string;
  operatorToken?: string;
  publisherKey: string;
  app?: string;
  channel?: string;
  rollout?: string;
  mode: 'canary' | 'shadow';
  minRuntime: string;
  maxSize?: string;
  maxLatencyMs?: string;
  maxMad?: string;
  minAgreement?: string;
  maxAccuracyDrop?: string;
  minAccuracy?: string;
  maxDropVsProduction?: string;
  modelCard?: string;
  card?: string;
  lineage?: string;
  dryRun?: boolean;
}

export function registerPublish(program: Command): void {
  withServer(
    program
      .command('publish <model>')
      .description(
        'quantize, validate (gates), profile, sign, upload and register a model; optionally start a rollout',
      )
      .requiredOption('--name <name>', 'model name (lowercase, e.g. vad)')
      .requiredOption('--version <semver>', 'release version')
      .option('--format <format>', 'onnx or tfjs (default: from the file: .json is tfjs)')
      .option(
        '--quantize <mode>',
        'int8 | float16 | none (ONNX); uint8 | uint16 | float16 | none (tfjs)',
        'none',
      )
      .option('--calibration <dir>', 'directory of .wav or .json inputs for the gates and the profile')
      .option('--gate-data <dir>', 'held-out (labelled) inputs the gates run on (default: --calibration)')
      .option('--reference-data <dir>', 'inputs the drift reference is measured on (default: --calibration)')
      .requiredOption(
        '--contract <file>',
        'JSON: inputs, outputs, pre/postprocessing, monitoring, carry, audio',
      )
      .requiredOption('--publisher-key <file>', 'publisher private key (from edgeship keygen)'),
  )
    .option(
      '--operator-token <token>',
      'token for the rollout step (default: $EDGESHIP_OPERATOR_TOKEN, then --token)',
    )
    .option('--app <app>', 'app to roll out to (and whose production the gates compare with)')
    .option('--channel <channel>', 'channel to roll out to (and whose production the gates compare with)')
    .option('--root <file>', "pinned root keys (root.pub.json) to verify the server's key set with")
    .option('--rollout <percent>', 'start a rollout at this share of devices (0-100)')
    .option('--mode <mode>', 'canary or shadow', 'canary')
    .option('--min-runtime <semver>', 'oldest runtime that may run this release', '0.1.0')
    .option('--max-size <bytes>', 'gate: largest total size of the release files')
    .option('--max-latency-ms <ms>', 'gate: slowest mean inference of the published model')
    .option(
      '--max-mad <x>',
      'gate: mean |published - float| of the compared outputs (default 0.01 when quantizing)',
    )
    .option(
      '--min-agreement <share>',
      'gate: share of decisions (contract monitoring.decision) that agree, 0-1',
    )
    .option(
      '--max-accuracy-drop <x>',
      'gate: accuracy the model may lose against the float model on labelled calibration data, 0-1 (default 0.01)',
    )
    .option('--min-accuracy <x>', 'gate: least accuracy on labelled gate data, 0-1')
    .option(
      '--max-drop-vs-production <x>',
      "gate: accuracy the model may lose against the channel's production release on labelled gate data, 0-1 (default 0.01)",
    )
    .option('--model-card <file>', 'model card (Markdown) stored with the release')
    .option(
      '--card <file.json>',
      'structured model card (intendedUse, limitations, trainingData, evaluation, segments), signed',
    )
    .option(
      '--lineage <file.json>',
      'lineage (trainingCode, data, hyperparameters, parent), signed as self-reported',
    )
    .option('--dry-run', 'stop after signing; send nothing')
    .option('--json', 'print JSON (no progress output)')
    .action(async (model: string, flags: PublishFlags) => {
      if (flags.mode !== 'canary' && flags.mode !== 'shadow') {
        throw new CliError(`--mode ${flags.mode}: use canary or shadow`);
      }
      if (flags.format !== undefined && flags.format !== 'onnx' && flags.format !== 'tfjs') {
        throw new CliError(`--format ${flags.format}: use onnx or tfjs`);
      }
      const progress = progressBar(flags);
      const options: PublishOptions = {
        model,
        name: flags.name,
        version: flags.version,
        format: flags.format,
        quantize: flags.quantize,
        calibration: flags.calibration,
        gateData: flags.gateData,
        referenceData: flags.referenceData,
        root: flags.root,
        contract: flags.contract,
        server: flags.server,
        token: flags.token,
        operatorToken: flags.operatorToken,
        publisherKey: flags.publisherKey,
        app: flags.app,
        channel: flags.channel,
        rollout: parseNumber(flags.rollout, '--rollout', 0, 100),
        mode: flags.mode,
        minRuntime: flags.minRuntime,
        budget: {
          maxSizeBytes: parseNumber(flags.maxSize, '--max-size'),
          maxLatencyMs: parseNumber(flags.maxLatencyMs, '--max-latency-ms'),
          maxMeanAbsDiff: parseNumber(flags.maxMad, '--max-mad'),
          minAgreement: parseNumber(flags.minAgreement, '--min-agreement', 0, 1),
          maxAccuracyDrop: parseNumber(flags.maxAccuracyDrop, '--max-accuracy-drop', 0, 1),
          minAccuracy: parseNumber(flags.minAccuracy, '--min-accuracy', 0, 1),
          maxDropVsProduction: parseNumber(flags.maxDropVsProduction, '--max-drop-vs-production', 0, 1),
        },
        modelCard: flags.modelCard,
        card: flags.card,
        lineage: flags.lineage,
        dryRun: flags.dryRun,
        onStep: flags.json ? undefined : (step, detail) => progress.step(step, detail),
        onProgress: flags.json ? undefined : (p) => progress.upload(p),
      };
      try {
        const result = await publishModel(options);
        progress.stop();
        const { signed: _signed, ...summary } = result;
        print(flags, { ok: true, ...summary }, () => [
          `published ${result.release}${flags.dryRun ? ' (dry run: nothing sent)' : ''}`,
          ...(result.quantization
            ? [
                `  ${result.quantization.mode}: ${result.quantization.bytesAfter} bytes, ${pct(result.quantization.ratio)} of float32`,
              ]
            : []),
          ...(result.validation
            ? result.validation.gates.map(
                (g) => `  gate ${g.passed ? 'ok  ' : 'FAIL'} ${g.name}: ${g.message}`,
              )
            : []),
          ...result.profile.map(
            (f) =>
              `  profile ${f.name}: ${f.observations} frames, ${f.min.toPrecision(3)}..${f.max.toPrecision(3)}`,
          ),
          ...(result.upload
            ? [`  uploaded ${result.upload.chunksUploaded} chunks (${result.upload.bytesUploaded} bytes)`]
            : []),
          ...(result.rollout
            ? [`  rollout ${result.rollout.id}: ${result.rollout.shareBps / 100}% ${result.rollout.mode}`]
            : []),
        ]);
      } catch (error) {
        progress.stop();
        // The gate report goes to stdout (a table here; with --json, runCli prints it in the error
        // document); the one-line reason to stderr.
        const report = error instanceof GateError ? error.report : null;
        if (report && !flags.json) {
          print(flags, { ok: false, validation: report }, () =>
            report.gates.map((g) => `  gate ${g.passed ? 'ok  ' : 'FAIL'} ${g.name}: ${g.message}`),
          );
        }
        throw error;
      }
    });
}

/**
 * Progress on stderr: step lines, and the upload as a bar on a terminal or as plain lines (every
 * quarter of the bytes) in a log or a pipe. Under --json stderr keeps only the one-line error.
 */
function progressBar(flags: OutputOptions) {
  const quiet = flags.json === true;
  const tty = process.stderr.isTTY === true;
  let bar: SingleBar | null = null;
  let quartersShown = -1;
  return {
    step(step: string, detail: string) {
      if (!quiet) process.stderr.write(`${step}: ${detail}\n`);
    },
    upload(p: UploadProgress) {
      if (quiet) return;
      if (!tty) {
        const quarters = p.bytesTotal > 0 ? Math.floor((4 * p.bytesDone) / p.bytesTotal) : 4;
        if (quarters > quartersShown) {
          quartersShown = quarters;
          process.stderr.write(
            `upload: ${quarters * 25}% ${p.bytesDone}/${p.bytesTotal} bytes, ${p.chunksDone}/${p.chunksTotal} chunks\n`,
          );
        }
        return;
      }
      if (!bar) {
        bar = new SingleBar({
          stream: process.stderr,
          format: 'upload [{bar}] {percentage}% {value}/{total} bytes, {chunks}',
        });
        bar.start(Math.max(p.bytesTotal, 1), 0, { chunks: `${p.chunksDone}/${p.chunksTotal} chunks` });
      }
      bar.update(p.bytesDone, { chunks: `${p.chunksDone}/${p.chunksTotal} chunks` });
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
