import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bigModelContract, bigOnnxModel } from '../../../test/support/big-model.ts';
import { bigModelInput, EXTERNAL_DATA_PATH } from '../../../test/support/big-model-input.ts';
import type { TestServer } from '../../../test/support/server.ts';
import { startCliServer } from '../../test-data/cli-server.ts';
import { publishModel } from './publish.ts';

const WIDTH = 300;
let t: TestServer;
let dir: string;
let files: Map<string, Uint8Array>;

beforeAll(async () => {
  ({ t, dir } = await startCliServer('external'));
  files = bigOnnxModel({ width: WIDTH, external: true });
  for (const [path, bytes] of files) await writeFile(join(dir, path), bytes);
  await writeFile(join(dir, 'contract.json'), JSON.stringify(bigModelContract(WIDTH)));
});

afterAll(async () => {
  await t?.stop();
});

async function run(model: Uint8Array, externalData?: Uint8Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model, {
    externalData: externalData ? [{ path: EXTERNAL_DATA_PATH, data: externalData }] : undefined,
  } as ort.InferenceSession.SessionOptions);
  const out = await session.run({ input: new ort.Tensor('float32', bigModelInput(WIDTH), [1, WIDTH]) });
  await session.release();
  return out.output!.data as Float32Array;
}

describe('publishing an ONNX model with external data', () => {
  it('ships model.onnx and model.onnx.data in one release, and the served chunks rebuild a model that runs', async () => {
    const result = await publishModel({
      model: join(dir, 'model.onnx'),
      name: 'big',
      version: '1.0.0',
      contract: join(dir, 'contract.json'),
      publisherKey: t.publisherKey,
      server: t.server.url,
      token: t.server.tokens!.publisher,
    });
    const signed = result.signed.signed;
    expect(signed.files.map((f) => [f.path, f.size])).toEqual([
      ['model.onnx', files.get('model.onnx')!.length],
      [EXTERNAL_DATA_PATH, files.get(EXTERNAL_DATA_PATH)!.length],
    ]);
    // What a device gets: each file rebuilt from the server's chunks, in order.
    const served = new Map<string, Uint8Array>();
    for (const file of signed.files) {
      const parts: Uint8Array[] = [];
      for (const chunk of file.chunks) {
        const response = await fetch(`${t.server.url}/v1/chunks/${chunk.sha256}`);
        expect(response.status).toBe(200);
        parts.push(new Uint8Array(await response.arrayBuffer()));
      }
      served.set(file.path, Buffer.concat(parts));
    }
    const expected = await run(files.get('model.onnx')!, files.get(EXTERNAL_DATA_PATH)!);
    expect(await run(served.get('model.onnx')!, served.get(EXTERNAL_DATA_PATH)!)).toEqual(expected);
    // The graph alone is not the model: its weights are in the second file.
    await expect(run(served.get('model.onnx')!)).rejects.toThrow();
  });

  it('refuses to quantize a model whose weights are external, before anything is sent', async () => {
    const error = await publishModel({
      model: join(dir, 'model.onnx'),
      name: 'big',
      version: '2.0.0',
      quantize: 'float16',
      calibration: join(dir, 'never-read'),
      contract: join(dir, 'contract.json'),
      publisherKey: t.publisherKey,
      dryRun: true,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ message: expect.stringContaining('external data (model.onnx.data)') });
  });

  it('refuses an external-data location outside the model folder', async () => {
    const escaped = await mkdtemp(join(tmpdir(), 'edgeship-escape-'));
    const bytes = new TextDecoder('latin1').decode(files.get('model.onnx')!);
    const model = bytes.replaceAll(EXTERNAL_DATA_PATH, '../model.o.data'); // same length: still a valid protobuf;
    await writeFile(join(escaped, 'model.onnx'), Buffer.from(model, 'latin1'));
    const error = await publishModel({
      model: join(escaped, 'model.onnx'),
      name: 'big',
      version: '3.0.0',
      contract: join(dir, 'contract.json'),
      publisherKey: t.publisherKey,
      dryRun: true,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ message: expect.stringContaining('is not a file beside the model') });
  });
});
