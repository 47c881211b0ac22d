/// <reference lib="webworker" />
// The writer side of pack-writer.ts: a nested copy of the worker script, started under
// PACK_WRITER_NAME, holds packs' sync access handles (and their locks) and writes what it is sent.
import { serializeError } from '@edgeship/protocol/errors';
import type { PackWriterReply, PackWriterRequest } from './pack-writer.ts';
import { Packs, type PackWriter } from './packs.ts';

export function servePackWriter(scope: DedicatedWorkerGlobalScope): void {
  const dirs = new Map<string, Promise<Packs>>();
  const writers = new Map<string, Promise<PackWriter>>();
  // Each pack's requests run in the order they were sent (a flush after the writes before it);
  // different packs do not wait for each other (an open may wait for another tab's lock).
  const queues = new Map<string, Promise<unknown>>();

  const packsOf = (dir: string) => {
    let packs = dirs.get(dir);
    if (!packs) {
      packs = Packs.open(dir, { write: true }).then((p) => {
        if (!p?.writable) throw new Error(`no writable OPFS directory ${dir} in the pack writer`);
        return p;
      });
      dirs.set(dir, packs);
    }
    return packs;
  };
  const held = (key: string) => {
    const writer = writers.get(key);
    if (!writer) throw new Error(`pack ${key} is not open for writing`);
    return writer;
  };

  async function handle(request: PackWriterRequest, key: string): Promise<Uint8Array | undefined> {
    switch (request.op) {
      case 'ping':
        return undefined;
      case 'open': {
        const packs = await packsOf(request.dir);
        const writer = packs.writer(request.file);
        writers.set(key, writer);
        writer.catch(() => writers.delete(key));
        await writer;
        return undefined;
      }
      case 'write':
        await (await held(key)).write(request.pieces);
        return undefined;
      case 'flush':
        await (await held(key)).flush();
        return undefined;
      case 'read': {
        const out = new Uint8Array(request.length);
        await (await held(key)).read(out, request.offset);
        return out;
      }
      case 'close': {
        writers.delete(key);
        await (await packsOf(request.dir)).closeWriters([request.file]);
        return undefined;
      }
    }
  }

  scope.onmessage = (event: MessageEvent<PackWriterRequest>) => {
    const request = event.data;
    const key = `${request.dir}/${request.file}`;
    const run = (queues.get(key) ?? Promise.resolve()).then(() => handle(request, key));
    const settled = run.then(
      () => {},
      () => {},
    );
    queues.set(key, settled);
    void settled.then(() => {
      if (queues.get(key) === settled) queues.delete(key);
    });
    run.then(
      (bytes) => {
        const reply: PackWriterReply = { id: request.id, ok: true, bytes };
        scope.postMessage(reply, bytes ? [bytes.buffer] : []);
      },
      (error: unknown) => {
        const reply: PackWriterReply = { id: request.id, ok: false, error: serializeError(error) };
        scope.postMessage(reply);
      },
    );
  };
}
