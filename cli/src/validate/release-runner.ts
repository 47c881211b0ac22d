import type { Release } from '@edgeship/protocol';
import type { TensorContract } from '@edgeship/runtime/contract';
import type { ModelUnderTest } from './gates.ts';
import { loadOnnxRunner } from './validate-onnx.ts';
import { loadTfjsRunner } from './validate-tfjs.ts';

/** An ONNX model in memory, run through `contract` as devices run it. */
export function onnxUnderTest(
  bytes: Uint8Array,
  contract: TensorContract | null,
  quantization?: Release['quantization'],
): ModelUnderTest {
  return { bytes: bytes.length, load: () => loadOnnxRunner(bytes, contract, quantization) };
}

/** A TensorFlow.js model in memory (model.json and its shards), run through `contract`. */
export function tfjsUnderTest(
  files: ReadonlyMap<string, Uint8Array>,
  contract: TensorContract | null,
): ModelUnderTest {
  let bytes = 0;
  for (const b of files.values()) bytes += b.length;
  return { bytes, load: () => loadTfjsRunner(files, contract) };
}

/**
 * A signed release's files, run the way a device runs that release: its format's engine, its
 * quantization's session options, its own contract. An ONNX release with external data does not
 * load here (onnxruntime-node takes the graph from memory): a failed load, not a wrong answer.
 */
export function releaseUnderTest(release: Release, files: ReadonlyMap<string, Uint8Array>): ModelUnderTest {
  if (release.format === 'tfjs') return tfjsUnderTest(files, release);
  const graph = files.get(release.files[0]!.path);
  if (!graph || release.files.length > 1) {
    return {
      bytes: release.files.reduce((n, f) => n + f.size, 0),
      load: () => Promise.reject(new Error('an ONNX release with external data cannot be compared here')),
    };
  }
  return onnxUnderTest(graph, release, release.quantization);
}
