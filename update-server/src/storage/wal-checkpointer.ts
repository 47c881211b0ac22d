import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** How often the checkpointer copies the WAL into the database file. */
export const CHECKPOINT_INTERVAL_MS = 100;
/**
 * The main connection's own automatic checkpoint, kept as a fallback should the checkpointer
 * fall behind or die: past this many WAL pages (4 KiB each, 64 MiB) a commit checkpoints as before.
 */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 16_384;

// CommonJS, run as a worker's eval source: its own connection to the same file, checkpointing
// PASSIVE (never waiting for, nor blocking, the server's writer or readers) on an interval.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 0');
db.pragma('synchronous = NORMAL');
let pages = 0;
const run = () => {
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)');
    if (row && row.checkpointed > 0) pages += row.checkpointed;
  } catch {}
};
const timer = setInterval(run, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  run();
  db.close();
  parentPort.postMessage({ stopped: true, pages });
  parentPort.close();
});
parentPort.postMessage({ ready: true });
`;

/**
 * Moves SQLite's WAL checkpoints off the event loop. With `synchronous = NORMAL` a commit only
 * appends to the WAL; the fsyncs happen at checkpoints, and SQLite's automatic checkpoint runs
 * them inside whichever commit crosses the threshold: the event loop then waits on the disk
 * (tens of ms on a busy VM), and every request with it. This worker thread holds its own
 * connection and checkpoints every CHECKPOINT_INTERVAL_MS instead, so the server's commits stay
 * appends. Durability is unchanged: a commit is acknowledged once in the WAL, as before, and the
 * checkpoint's fsyncs are the same ones, in another thread.
 */
export class WalCheckpointer {
  private readonly worker: Worker;
  private stopping: Promise<number> | null = null;
  /** Resolves once the worker's connection is open (or rejects if it could not open). */
  readonly ready: Promise<void>;

  constructor(file: string, intervalMs = CHECKPOINT_INTERVAL_MS) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // Plain CommonJS: no loader hooks (tsx) to start in the thread.
      execArgv: [],
      workerData: { file, intervalMs, module: createRequire(import.meta.url).resolve('better-sqlite3') },
    });
    this.ready = new Promise((resolve, reject) => {
      const onMessage = (message: { ready?: boolean }) => {
        if (!message.ready) return;
        this.worker.off('error', reject);
        // Running, it never keeps the process alive on its own (close() stops it).
        this.worker.unref();
        resolve();
      };
      this.worker.once('message', onMessage);
      this.worker.once('error', reject);
    });
    // A failed checkpointer leaves the fallback automatic checkpoint; it never takes the server down.
    this.worker.on('error', () => {});
  }

  /** Runs a last checkpoint and closes the worker's connection; resolves with pages checkpointed. */
  stop(): Promise<number> {
    this.stopping ??= new Promise<number>((resolve) => {
      const done = (pages: number) => {
        clearTimeout(timer);
        resolve(pages);
      };
      const timer = setTimeout(() => void this.worker.terminate().then(() => done(0)), 5_000);
      this.worker.on('message', (message: { stopped?: boolean; pages?: number }) => {
        if (message.stopped) done(message.pages ?? 0);
      });
      this.worker.once('exit', () => done(0));
      this.worker.ref();
      this.worker.postMessage('stop');
    });
    return this.stopping;
  }
}
