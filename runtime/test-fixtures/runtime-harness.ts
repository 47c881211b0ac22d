/**
 * What the runtime's end-to-end browser tests share: real update servers (started in Node by
 * test/support/browser-commands.ts), runtimes pinned to their root keys, and the Silero VAD
 * inputs. Each test file calls `afterEach(stopAll)`: every runtime and server a test started is
 * disposed and stopped after it, passed or failed.
 */
import { expect, onTestFailed } from 'vitest';
import { commands } from 'vitest/browser';
import { type CreateRuntimeOptions, createRuntime, type Runtime } from '../src/client.ts';
import type { NamedTensors } from '../src/engines/tensor.ts';
import type { ModelSchema } from '../src/schema.ts';
import type { RuntimeEvent } from '../src/worker/config.ts';
import { WASM_PATHS } from './browser-fixtures.ts';

export { WASM_PATHS };

export interface TestServer {
  name: string;
  /** The chaos proxy in front of the server: what devices use. */
  url: string;
  trustedRoot: unknown;
}

const runtimes: Array<Pick<Runtime, 'dispose'>> = [];
const servers: string[] = [];
let serial = 0;

/** A name no other test of this page uses: for servers and IndexedDB prefixes. */
export function uniqueName(tag: string): string {
  return `${tag}-${Date.now()}-${serial++}`;
}

/**
 * The test's timeline: each runtime call with its duration (or still pending), every runtime
 * event and the test's own `step`s, from the first entry on. Printed only when the test fails,
 * so a test that times out says which call it was waiting on (how a Firefox stall is traced).
 */
let timeline: string[] = [];
let timelineStart = 0;

function elapsed(): string {
  return `${((performance.now() - timelineStart) / 1000).toFixed(1)} s`;
}

/** A line on the test's timeline (printed if the test fails). */
export function step(what: string): void {
  if (timeline.length === 0) {
    timelineStart = performance.now();
    const lines = timeline;
    onTestFailed(() => console.error(`timeline of the failed test:\n  ${lines.join('\n  ')}`));
  }
  timeline.push(`${elapsed()}  ${what}`);
}

async function timed<T>(what: string, call: () => Promise<T>): Promise<T> {
  step(`${what} …`);
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    const result = await call();
    step(`${what} done in ${ms()} ms`);
    return result;
  } catch (error) {
    step(
      `${what} failed in ${ms()} ms: ${(error as { code?: string }).code ?? ''} ${(error as Error).message}`,
    );
    throw error;
  }
}

const TRACED_CALLS = new Set([
  'load',
  'run',
  'runSequence',
  'checkForUpdates',
  'status',
  'reset',
  'sendTelemetry',
  'dispose',
]);

/**
 * `runtime` with its calls (and its handles' calls) and events on the test's timeline, as
 * `label`; startRuntime traces every runtime it starts.
 */
export function traced<R extends Pick<Runtime, 'on'>>(runtime: R, label: string): R {
  runtime.on('*', (event) => {
    const { type, ...rest } = event;
    step(`${label} event ${type} ${JSON.stringify(rest).slice(0, 200)}`);
  });
  const wrap = <T extends object>(target: T, prefix: string): T =>
    new Proxy(target, {
      get(object, key, receiver) {
        const value = Reflect.get(object, key, receiver);
        if (typeof key !== 'string' || !TRACED_CALLS.has(key) || typeof value !== 'function') return value;
        return (...args: unknown[]) =>
          timed(`${prefix}.${key}(${typeof args[0] === 'string' ? args[0] : ''})`, async () => {
            const result = await value.apply(object, args);
            return key === 'load' ? wrap(result as object, `${prefix}.${args[0]}`) : result;
          });
      },
    });
  return wrap(runtime, label);
}

/** Disposes every runtime and stops every server the test started (an afterEach hook). */
export async function stopAll(): Promise<void> {
  for (const runtime of runtimes.splice(0)) await runtime.dispose();
  for (const name of servers.splice(0)) await commands.stopEdgeshipServer(name);
  timeline = [];
}

/** A real update server on loopback behind a chaos proxy, stopped after the test. */
export async function startServer(tag = 'rt'): Promise<TestServer> {
  const name = uniqueName(tag);
  servers.push(name);
  return timed(`startServer(${name})`, () => commands.startEdgeshipServer(name));
}

/** What `commands.publishModel` answers: the release's rollout, size and chunks. */
export type PublishedModel = Awaited<ReturnType<typeof commands.publishModel>>;

/** A server whose stable channel offers the real Silero VAD as vad@1.0.0 (`vad`: that release). */
export async function serverWithVad(tag = 'vad'): Promise<TestServer & { vad: PublishedModel }> {
  const server = await startServer(tag);
  const vad = await timed('publish vad@1.0.0', () =>
    commands.publishModel(server.name, { version: '1.0.0', source: 'silero', promote: true }),
  );
  return { ...server, vad };
}

/**
 * The options every runtime of these tests starts from: the demo app's stable channel on `server`,
 * pinned to its root keys, onnxruntime-web from the Vite server, WASM forced (its thread counts
 * raced once per store), no telemetry, no check on load. `extra` overrides any of them.
 */
export function runtimeOptions(
  server: TestServer,
  extra: Partial<CreateRuntimeOptions> = {},
): CreateRuntimeOptions {
  return {
    server: server.url,
    app: 'demo-app',
    channel: 'stable',
    trustedRoot: server.trustedRoot as CreateRuntimeOptions['trustedRoot'],
    wasmPaths: WASM_PATHS,
    backend: 'wasm',
    telemetry: false,
    checkOnLoad: false,
    storagePrefix: uniqueName('rt'),
    ...extra,
  };
}

/** A runtime on `runtimeOptions(server, extra)`, disposed after the test. */
export async function startRuntime<S extends ModelSchema | unknown = unknown>(
  server: TestServer,
  extra: Partial<CreateRuntimeOptions> = {},
): Promise<Runtime<S>> {
  const runtime = traced(
    await timed('createRuntime', () => createRuntime<S>(runtimeOptions(server, extra))),
    `runtime${runtimes.length}`,
  );
  runtimes.push(runtime);
  return runtime;
}

/** A runtime with telemetry on that sends it only when the test calls `sendTelemetry()`. */
export function startTelemetryRuntime(
  server: TestServer,
  extra: Partial<CreateRuntimeOptions> = {},
): Promise<Runtime> {
  return startRuntime(server, { telemetry: true, telemetryIntervalMs: 0, ...extra });
}

/**
 * A runtime on its own IndexedDB databases under `storagePrefix` that declares the VAD, so the
 * VAD is checked for before the first load; disposed after the test.
 */
export function startVadRuntime(
  server: TestServer,
  storagePrefix: string,
  extra: Partial<CreateRuntimeOptions> = {},
): Promise<Runtime> {
  return startRuntime(server, { models: ['vad'], storagePrefix, ...extra });
}

/** Every event `runtime` dispatches from now on, in order. */
export function recordEvents(runtime: Runtime): RuntimeEvent[] {
  const events: RuntimeEvent[] = [];
  runtime.on('*', (event) => events.push(event));
  return events;
}

/** The VAD's speech probability for `sileroToneInputs()`, checked to be one (in [0, 1]). */
export async function speechProbability(runtime: Runtime): Promise<number> {
  const outputs = await runtime.run('vad', sileroToneInputs());
  const p = outputs.output!.data[0] as number;
  expect(p).toBeGreaterThanOrEqual(0);
  expect(p).toBeLessThanOrEqual(1);
  return p;
}

/** Silero VAD's state and sample rate for a first frame. */
export function sileroState(): Pick<NamedTensors, 'state' | 'sr'> {
  return {
    state: { data: new Float32Array(2 * 128), dims: [2, 1, 128] },
    sr: { data: new BigInt64Array([16_000n]), dims: [] },
  };
}

/** One 32 ms frame of a 440 Hz tone with Silero's initial state and sample rate. */
export function sileroToneInputs(): NamedTensors {
  const frame = new Float32Array(512);
  for (let i = 0; i < frame.length; i++) frame[i] = 0.3 * Math.sin((2 * Math.PI * 440 * i) / 16_000);
  return { input: { data: frame, dims: [1, 512] }, ...sileroState() };
}

/**
 * Frame `i` of a chirp (200 Hz, 40 Hz higher each frame) at `gain`, with Silero's initial state:
 * tests pass a low gain for some frames so the VAD hears speech in some and not in others.
 */
export function sileroChirpInputs(i: number, gain: number): NamedTensors {
  const frame = new Float32Array(512);
  const f = 200 + 40 * i;
  for (let t = 0; t < frame.length; t++) frame[t] = 0.4 * Math.sin((2 * Math.PI * f * t) / 16_000) * gain;
  return { input: { data: frame, dims: [1, 512] }, ...sileroState() };
}
