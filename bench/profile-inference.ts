// Attribution for the inference benchmark: V8 CPU profiles (CDP Profiler) of the page and of
// its workers while the bench page runs Silero frames through one variant at a time. Prints, per
// variant and thread, the busy time per frame and the functions that take it.
//
//   EDGESHIP_BENCH_NO_MINIFY=1 EDGESHIP_BENCH_CDP_PORT=9399 node --experimental-websocket \
//     --conditions=edgeship-source --import tsx bench/profile-inference.ts [frames] [variants]
// variants: runtime, raw-worker, comlink-worker (each alone), paired (runtime and raw ORT in a
// worker in alternating 4-frame blocks, both profiled under the same load).
import { openBenchPage, startModelServer } from './src/browser/harness.ts';

type Node = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };

const frames = Number(process.argv[2] ?? 2000);
const variants = (process.argv[3] ?? 'runtime,raw-worker,comlink-worker').split(',');
const port = process.env.EDGESHIP_BENCH_CDP_PORT;
if (!port || !process.env.EDGESHIP_BENCH_NO_MINIFY) {
  throw new Error('set EDGESHIP_BENCH_CDP_PORT and EDGESHIP_BENCH_NO_MINIFY=1');
}

const models = await startModelServer();
const session = await openBenchPage(models);
const version = (await (await fetch(`http://127.0.0.1:${port}/json/version`)).json()) as {
  webSocketDebuggerUrl: string;
};
const ws = new WebSocket(version.webSocketDebuggerUrl);
await new Promise((ok) => ws.addEventListener('open', ok, { once: true }));
let nextId = 1;
const waiting = new Map<number, (r: { result?: unknown; error?: unknown }) => void>();
ws.addEventListener('message', (event) => {
  const msg = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: unknown };
  if (msg.id !== undefined) waiting.get(msg.id)?.(msg);
});
function send<T>(method: string, params: object = {}, sessionId?: string): Promise<T> {
  const id = nextId++;
  ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
  return new Promise((ok, fail) =>
    waiting.set(id, (r) => (r.error ? fail(new Error(JSON.stringify(r.error))) : ok(r.result as T))),
  );
}

try {
  await session.call('prepareInference', `profile-${Date.now()}`, 50);
  const { targetInfos } = await send<{ targetInfos: Array<{ targetId: string; type: string; url: string }> }>(
    'Target.getTargets',
  );
  const targets = targetInfos.filter((t) => t.type === 'page' || t.type === 'worker');
  const sessions: Array<{ label: string; sessionId: string }> = [];
  for (const t of targets) {
    const { sessionId } = await send<{ sessionId: string }>('Target.attachToTarget', {
      targetId: t.targetId,
      flatten: true,
    });
    await send('Profiler.enable', {}, sessionId);
    await send('Profiler.setSamplingInterval', { interval: 50 }, sessionId);
    sessions.push({ label: `${t.type} ${t.url.split('/').at(-1)}`, sessionId });
  }
  for (const variant of variants) {
    for (const s of sessions) await send('Profiler.start', {}, s.sessionId);
    // 'paired': both in alternating 4-frame blocks, `frames` each, under the same load.
    const totalMs =
      variant === 'paired'
        ? (await session.call('inferencePaired', frames / 4, 4)).runtimeMs.length
        : (await session.call('inference', variant as 'runtime', frames)).totalMs;
    console.log(`\n=== ${variant}: ${frames} frames, ${(totalMs / frames).toFixed(4)} ms per frame (wall)`);
    for (const s of sessions) {
      const { profile } = await send<{ profile: Profile }>('Profiler.stop', {}, s.sessionId);
      report(s.label, profile);
    }
  }
} finally {
  ws.close();
  await session.close();
  await models.server.stop();
}

function report(label: string, profile: Profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)!;
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000; // ms until the next sample
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    busy += dt;
    const key = `${functionName || '(anonymous)'} ${url.split('/').at(-1)}:${lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 40);
  console.log(`-- ${label}: busy ${((busy / frames) * 1000).toFixed(1)} µs per frame`);
  for (const [key, ms] of top) {
    console.log(`   ${((ms / frames) * 1000).toFixed(2).padStart(7)} µs  ${key}`);
  }
}
