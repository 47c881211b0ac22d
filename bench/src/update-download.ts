// 3. Update download: fetch + verify + store a release (the runtime's downloadRelease, and end
// to end through runtime.checkForUpdates) versus a plain fetch of the same chunk URLs (the
// floor); and the bytes fetched for a release that shares chunks with the installed one.
import { openBenchPage, startModelServer } from './browser/harness.ts';
import type { Benchmark } from './result.ts';
import { compared, plain } from './rows.ts';
import { median, round } from './stats.ts';

export const updateDownload: Benchmark = async (ctx) => {
  const reps = ctx.quick ? 3 : 9;
  const models = await startModelServer();
  const session = await openBenchPage(models);
  const { v1, v2, chunkUrls } = models;
  const fullSize = v1.signed.files[0]!.size;
  const v2Size = v2.signed.files[0]!.size;
  try {
    const direct: number[] = [];
    const viaRuntime: number[] = [];
    const plainFetch: number[] = [];
    let bytesFetched = 0;
    let plainBytes = 0;
    const shared: Array<{ bytesFetched: number; chunksFetched: number; chunksReused: number }> = [];
    for (let rep = 0; rep < reps; rep++) {
      ctx.log(`update download rep ${rep + 1}/${reps}`);
      const id = `dl-${Date.now()}-${rep}`;
      for (let k = 0; k < 3; k++) {
        const which = (rep + k) % 3;
        if (which === 0) {
          const [first, second] = await session.call('downloadDirect', id, [v1, v2]);
          direct.push(first!.ms);
          bytesFetched = first!.bytesFetched;
          shared.push(second!);
        } else if (which === 1) {
          const result = await session.call('runtimeUpdate', `${id}-rt`);
          if (result.failures.length)
            throw new Error(`runtime update failed: ${JSON.stringify(result.failures)}`);
          viaRuntime.push(result.ms);
        } else {
          const result = await session.call('plainFetch', chunkUrls, 4);
          plainFetch.push(result.ms);
          plainBytes = result.bytes;
        }
      }
    }
    const floor = median(plainFetch);
    const sharedBytes = median(shared.map((s) => s.bytesFetched));
    return {
      name: 'update-download',
      title: 'Update download: fetch, verify and store a release (Chromium, loopback)',
      browser: session.version,
      settings: {
        reps,
        releaseBytes: fullSize,
        chunks: v1.signed.files[0]!.chunks.length,
        concurrency: 4,
      },
      rows: [
        compared(
          'downloadRelease (fetch + SHA-256 per chunk and file + IndexedDB)',
          median(direct),
          'ms',
          'plain fetch of the same chunks',
          floor,
        ),
        compared(
          'runtime.checkForUpdates on an empty store (manifest + verify + download + store, in the worker)',
          median(viaRuntime),
          'ms',
          'plain fetch of the same chunks',
          floor,
        ),
        compared('bytes fetched by downloadRelease', bytesFetched, 'B', 'plain fetch', plainBytes),
        compared(
          'bytes fetched for 1.1.0 with 1.0.0 installed (shares all chunks but the last)',
          sharedBytes,
          'B',
          'full size of 1.1.0',
          v2Size,
          `${shared[0]?.chunksFetched} chunk(s) fetched, ${shared[0]?.chunksReused} reused`,
        ),
        plain('plain fetch throughput (floor)', fullSize / 1e6 / (floor / 1000), 'MB/s'),
      ],
      goals: [
        {
          goal: 'a release sharing chunks fetches only the chunks it lacks',
          met: sharedBytes < v2Size,
          detail: `${sharedBytes} of ${v2Size} bytes (${round((sharedBytes / v2Size) * 100, 1)}%)`,
        },
      ],
      notes: ['The issue sets no time goal for the download: the ratios to the plain fetch are reported.'],
      raw: { direct, viaRuntime, plainFetch, shared },
    };
  } finally {
    await session.close();
    await models.server.stop();
  }
};
