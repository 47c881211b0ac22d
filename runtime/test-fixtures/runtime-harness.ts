/**
 * What the runtime's end-to-end browser tests share: real update servers (started in Node by
 * test/support/browser-commands.ts), runtimes pinned to their root keys, and the Silero VAD
 * inputs. Each test file calls `afterEach(stopAll)`: every runtime and server a test started is
 * disposed and stopped after it, passed or failed.
 */
import { commands } from 'vitest/browser';
import { type CreateRuntimeOptions, createRuntime, type Runtime } from '../src/client.ts';
import type { NamedTensors } from '../src/engines/tensor.ts';
import type { ModelSchema } from '../src/schema.ts';
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

/** Disposes every runtime and stops every server the test started (an afterEach hook). */
export async function stopAll(): Promise<void> {
  for (const runtime of runtimes.splice(0)) await runtime.dispose();
  for (const name of servers.splice(0)) await commands.stopEdgeshipServer(name);
}

/** A real update server on loopback behind a chaos proxy, stopped after the test. */
export async function startServer(tag = 'rt'): Promise<TestServer> {
  const name = uniqueName(tag);
  servers.push(name);
  return commands.startEdgeshipServer(name);
}

/** A server whose stable channel offers the real Silero VAD as vad@1.0.0. */
export async function serverWithVad(tag = 'vad'): Promise<TestServer> {
  const server = await startServer(tag);
  await commands.publishModel(server.name, { version: '1.0.0', source: 'silero', promote: true });
  return server;
}

/**
 * The options every runtime of these tests starts from: the demo app's stable channel on `server`,
 * pinned to its root keys, onnxruntime-web from the Vite server, WASM forced (no autotune), no
 * telemetry, no check on load. `extra` overrides any of them.
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
  const runtime = await createRuntime<S>(runtimeOptions(server, extra));
  runtimes.push(runtime);
  return runtime;
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
