import { createRuntime } from '@edgeship/runtime';
import { Workbox } from 'workbox-window';
import { decodeToMono16k, recordMicrophone, VAD_SAMPLE_RATE } from './audio.ts';
import type { DemoModels, DemoRuntime, ToneModel, VadModel } from './models.ts';
import { RuntimePanel, watchNetwork } from './runtime-panel.ts';
import { classifyRandomTone } from './tone.ts';
import { detectSpeech, type VadProgress } from './vad.ts';
import { drawWaveform } from './waveform.ts';

const APP = 'demo';
const CHANNEL = 'stable';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

async function registerServiceWorker(): Promise<void> {
  if (!__EDGESHIP_SERVICE_WORKER__ || !('serviceWorker' in navigator)) return;
  const wb = new Workbox('/sw.js');
  // A new app shell waits until every tab of the old one is closed (registerType "prompt"):
  // the page never changes code under a running inference.
  wb.addEventListener('waiting', () => {
    $('update-status').dataset.shell = 'waiting';
  });
  await wb.register();
}

async function startRuntime(): Promise<{ runtime: DemoRuntime; panel: RuntimePanel }> {
  const root = JSON.parse(__EDGESHIP_TRUSTED_ROOT__);
  if (!root)
    throw new Error(
      'this build has no pinned root keys: build it with EDGESHIP_TRUSTED_ROOT (npm start does)',
    );
  // Resolves once the worker has started: storage persistence is asked for in the background
  // (Firefox waits for the user to answer a prompt), never on the way to a ready page.
  const runtime = await createRuntime<DemoModels>({
    server: location.origin,
    app: APP,
    channel: CHANNEL,
    trustedRoot: root,
    // Same origin, versioned with the build: precached by the service worker, never a CDN.
    wasmPaths: new URL(__EDGESHIP_ORT_PATH__, location.origin).href,
    tfjsWasmPaths: new URL(__EDGESHIP_TFJS_WASM_PATH__, location.origin).href,
    // ?backend=wasm|webgpu forces a backend; by default the runtime measures and picks.
    backend: (new URLSearchParams(location.search).get('backend') as 'wasm' | 'webgpu' | null) ?? 'auto',
    checkIntervalMs: 60_000,
    telemetryIntervalMs: 30_000,
    shadowSampleRate: 0.25,
    // Both kept installed and updated, so the demo works offline before either was used.
    models: ['vad', 'tone'],
  });
  const panel = new RuntimePanel(runtime);
  runtime.on('*', (event) => panel.onEvent(event));
  return { runtime, panel };
}

/** One handle per model, shared by the first load and every later use (a failed load is retried). */
function lazyModel<T>(load: () => Promise<T>): () => Promise<T> {
  let handle: Promise<T> | null = null;
  return () => {
    handle ??= load().catch((error: unknown) => {
      handle = null;
      throw error;
    });
    return handle;
  };
}

function wireVad(vad: () => Promise<VadModel>, panel: RuntimePanel): void {
  const summary = $('vad-summary');
  const list = $('segments');
  const canvas = $<HTMLCanvasElement>('waveform');
  let busy = false;

  const analyse = async (bytes: ArrayBuffer, label: string) => {
    if (busy) return;
    busy = true;
    try {
      summary.textContent = `Decoding ${label}…`;
      const samples = await decodeToMono16k(bytes);
      const render = (progress: VadProgress) => {
        drawWaveform(canvas, samples, VAD_SAMPLE_RATE, progress.segments);
        list.replaceChildren(
          ...progress.segments.map((s) => {
            const item = document.createElement('li');
            item.dataset.start = String(s.start);
            item.dataset.end = String(s.end);
            item.textContent = `${s.start.toFixed(2)} s – ${s.end.toFixed(2)} s`;
            return item;
          }),
        );
        const seconds = (progress.probabilities.length * 512) / VAD_SAMPLE_RATE;
        summary.textContent = progress.done
          ? `${label}: ${progress.segments.length} speech segment(s) in ${(samples.length / VAD_SAMPLE_RATE).toFixed(1)} s`
          : `${label}: ${seconds.toFixed(1)} s analysed…`;
        summary.dataset.state = progress.done ? 'done' : 'running';
      };
      await detectSpeech(await vad(), samples, render);
      await panel.refresh();
    } catch (error) {
      summary.textContent = `Could not analyse ${label}`;
      panel.showError(error);
    } finally {
      busy = false;
    }
  };

  $('run-sample').addEventListener('click', async () => {
    const response = await fetch('/samples/speech.wav');
    await analyse(await response.arrayBuffer(), 'sample clip');
  });
  $<HTMLInputElement>('file-input').addEventListener('change', async (event) => {
    const file = (event.target as HTMLInputElement).files?.[0];
    if (file) await analyse(await file.arrayBuffer(), file.name);
  });
  const drop = $('drop-zone');
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer?.files[0];
    if (file) await analyse(await file.arrayBuffer(), file.name);
  });
  const record = $<HTMLButtonElement>('record');
  if (typeof navigator.mediaDevices?.getUserMedia === 'function' && typeof MediaRecorder !== 'undefined') {
    record.disabled = false;
    record.addEventListener('click', async () => {
      record.disabled = true;
      try {
        summary.textContent = 'Recording 5 s…';
        await analyse(await recordMicrophone(5), 'recording');
      } catch (error) {
        panel.showError(error);
      } finally {
        record.disabled = false;
      }
    });
  }
}

function wireTone(tone: () => Promise<ToneModel>, panel: RuntimePanel): void {
  const button = $<HTMLButtonElement>('tone-run');
  const result = $('tone-result');
  let seed = Date.now() % 100_000;
  button.addEventListener('click', async () => {
    try {
      const { predicted, expected, probabilities } = await classifyRandomTone(await tone(), seed++);
      result.textContent = `Loudest tone: ${predicted} (generated: ${expected}; p = ${probabilities.map((p) => p.toFixed(2)).join(' / ')})`;
      result.dataset.correct = String(predicted === expected);
      await panel.refresh();
    } catch (error) {
      panel.showError(error);
    }
  });
}

async function main(): Promise<void> {
  watchNetwork();
  void registerServiceWorker().catch((error) => console.warn('service worker:', error));
  const { runtime, panel } = await startRuntime();
  $('check-updates').addEventListener('click', async () => {
    try {
      await runtime.checkForUpdates();
    } catch (error) {
      panel.showError(error);
    }
    await panel.refresh();
  });
  const vad = lazyModel(() => runtime.load('vad'));
  const tone = lazyModel(() => runtime.load('tone'));
  wireVad(vad, panel);
  wireTone(tone, panel);
  await panel.refresh();
  try {
    await vad();
    $<HTMLButtonElement>('run-sample').disabled = false;
    $('vad-summary').textContent = 'Model ready: run the sample clip or drop a file.';
  } catch (error) {
    $('vad-summary').textContent = 'The VAD model is not available.';
    panel.showError(error);
  }
  try {
    await tone();
    $<HTMLButtonElement>('tone-run').disabled = false;
  } catch (error) {
    $('tone-result').textContent = `The tone model is not available: ${(error as Error).message}`;
  }
  await panel.refresh();
  document.body.dataset.ready = 'true';
}

void main().catch((error) => {
  document.body.dataset.ready = 'error';
  const box = document.getElementById('runtime-error')!;
  box.textContent = (error as Error).message;
  box.hidden = false;
});
