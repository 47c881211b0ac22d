// Big files in the browser, in a dedicated worker (where the runtime keeps its store): streaming
// SHA-256 libraries against each other and against crypto.subtle, and IndexedDB (values as
// ArrayBuffer views and as Blobs) against the Origin Private File System (sync access handles)
// for writing and reading the same random chunks. Issue 16, items 1 and 2.
import { openBenchPage, startModelServer } from './browser/harness.ts';
import type { Benchmark, Row } from './result.ts';
import { compared, plain } from './rows.ts';
import { median, percentile, round } from './stats.ts';

const HASHES = ['noble', 'hash-wasm', 'subtle-per-chunk', 'subtle-whole'] as const;
const STORES = [
  'idb-arraybuffer',
  'idb-blob',
  'idb-blob-joined',
  'opfs-file-per-chunk',
  'opfs-one-file',
] as const;

const LABEL: Record<string, string> = {
  noble: '@noble/hashes sha256.create() streaming',
  'hash-wasm': 'hash-wasm createSHA256() streaming',
  'subtle-per-chunk': 'crypto.subtle.digest per 256 KiB chunk (not a whole-file hash)',
  'subtle-whole': 'crypto.subtle.digest of the whole file in one buffer (not streaming)',
  'idb-arraybuffer': 'IndexedDB, one Uint8Array value per chunk',
  'idb-blob': 'IndexedDB, one Blob value per chunk',
  'idb-blob-joined': 'IndexedDB, one Blob value per chunk, read as one joined Blob',
  'opfs-file-per-chunk': 'OPFS, one file per chunk (sync access handle)',
  'opfs-one-file': 'OPFS, one file (sync access handle, chunk writes at offsets)',
};

/** A call that never answers (seen once: an OPFS write in the worker hung) fails the rep instead. */
const HANG_MS = 120_000;
function withinHang<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${HANG_MS} ms`)), HANG_MS);
  });
  return Promise.race([work, hang]).finally(() => clearTimeout(timer));
}

const spread = (xs: number[]) =>
  `p10–p90 ${round(percentile(xs, 10), 0)}–${round(percentile(xs, 90), 0)} ms, n=${xs.length}`;

export const storage: Benchmark = async (ctx) => {
  const reps = ctx.quick ? 3 : 6;
  const megabytes = Number(process.env.EDGESHIP_BENCH_STORAGE_MB ?? (ctx.quick ? 50 : 200));
  const models = await startModelServer();
  const session = await openBenchPage(models);
  try {
    const generated = await session.call('storageGenerate', megabytes);
    const hashMs: Record<string, number[]> = Object.fromEntries(HASHES.map((k) => [k, []]));
    const writeMs: Record<string, number[]> = Object.fromEntries(STORES.map((k) => [k, []]));
    const readMs: Record<string, number[]> = Object.fromEntries(STORES.map((k) => [k, []]));
    const digests = new Set<string>();
    const hangs: string[] = [];
    for (const kind of HASHES) await session.call('storageHash', kind); // warm-up (JIT, WASM compile)
    for (let rep = 0; rep < reps; rep++) {
      ctx.log(`rep ${rep + 1}/${reps}`);
      for (let k = 0; k < HASHES.length; k++) {
        const kind = HASHES[(rep + k) % HASHES.length]!;
        const { ms, hex } = await session.call('storageHash', kind);
        ctx.log(`  hash ${kind}: ${round(ms, 0)} ms`);
        hashMs[kind]!.push(ms);
        if (hex) digests.add(hex);
      }
      for (let k = 0; k < STORES.length; k++) {
        const kind = STORES[(rep + k) % STORES.length]!;
        const name = `bench-${kind}-${rep}`;
        try {
          const wrote = await withinHang(session.call('storageWrite', kind, name), `${kind} write`);
          const read = await withinHang(session.call('storageRead', kind, name), `${kind} read`);
          if (!read.ok) throw new Error(`${kind} read back different bytes`);
          writeMs[kind]!.push(wrote.ms);
          readMs[kind]!.push(read.ms);
          ctx.log(`  ${kind}: write ${round(wrote.ms, 0)} ms, read ${round(read.ms, 0)} ms`);
          await withinHang(session.call('storageRemove', kind, name), `${kind} remove`);
        } catch (error) {
          // A new worker with the same data; the hang is reported, the rep is not counted.
          hangs.push(`rep ${rep + 1}: ${(error as Error).message}`);
          ctx.log(`  ${kind}: ${(error as Error).message}; restarting the worker`);
          await session.call('storageClose');
          await session.call('storageGenerate', megabytes);
          // New random data: its hash differs from the old data's.
          digests.clear();
        }
      }
    }
    if (digests.size !== 1) throw new Error(`the whole-file hashes disagree: ${[...digests].join(', ')}`);
    const mbps = (ms: number) => round(generated.bytes / 1e6 / (ms / 1000), 1);
    const noble = median(hashMs.noble!);
    const idb = median(writeMs['idb-arraybuffer']!);
    const idbRead = median(readMs['idb-arraybuffer']!);
    const rows: Row[] = [
      ...HASHES.map((k) =>
        compared(
          `hash ${megabytes} MB: ${LABEL[k]}`,
          median(hashMs[k]!),
          'ms',
          LABEL.noble!,
          noble,
          `${mbps(median(hashMs[k]!))} MB/s; ${spread(hashMs[k]!)}`,
        ),
      ),
      ...STORES.map((k) =>
        compared(
          `write ${megabytes} MB: ${LABEL[k]}`,
          median(writeMs[k]!),
          'ms',
          LABEL['idb-arraybuffer']!,
          idb,
          `${mbps(median(writeMs[k]!))} MB/s; ${spread(writeMs[k]!)}`,
        ),
      ),
      ...STORES.map((k) =>
        compared(
          `read ${megabytes} MB into one buffer: ${LABEL[k]}`,
          median(readMs[k]!),
          'ms',
          LABEL['idb-arraybuffer']!,
          idbRead,
          `${mbps(median(readMs[k]!))} MB/s; ${spread(readMs[k]!)}`,
        ),
      ),
      plain('chunks', generated.chunks, 'chunks', '256 KiB each, random bytes'),
    ];
    const fastestHash = HASHES.filter((k) => k === 'noble' || k === 'hash-wasm').sort(
      (a, b) => median(hashMs[a]!) - median(hashMs[b]!),
    )[0]!;
    return {
      name: 'storage',
      title: `Big files in a worker: streaming SHA-256 and storage, ${megabytes} MB (Chromium)`,
      browser: session.version,
      settings: { reps, megabytes, chunkBytes: 256 * 1024, writeLanes: 4, idbReadAhead: 4 },
      rows,
      goals: [
        {
          goal: 'the runtime streams whole-file hashes with the faster streaming library',
          met: fastestHash === 'hash-wasm',
          detail: `${LABEL[fastestHash]} ${round(median(hashMs[fastestHash]!), 0)} ms vs ${LABEL.noble} ${round(noble, 0)} ms (the runtime uses hash-wasm)`,
        },
      ],
      notes: [
        'Each rep runs every variant once, in a rotating order; each storage rep writes a fresh database or directory, reads it back, then deletes it.',
        'IndexedDB writes are one readwrite transaction per chunk (committed), four in flight, as the downloader stores chunks; OPFS writes flush each file.',
        `Calls that never answered (not counted): ${hangs.length ? hangs.join('; ') : 'none'}.`,
      ],
      raw: { hashMs, writeMs, readMs, hangs },
    };
  } finally {
    await session.call('storageClose').catch(() => {});
    await session.close();
    await models.server.stop();
  }
};
