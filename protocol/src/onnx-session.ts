import type { Release } from './release.ts';

/** The onnxruntime session options a release runs with (a subset of ORT's own SessionOptions). */
export interface OnnxSessionOptions {
  graphOptimizationLevel: 'all';
  extra?: { session: Record<string, string> };
}

/**
 * How every ONNX release is opened: by onnxruntime-node in the publish gates and profile, and by
 * onnxruntime-web on devices, so the gates measure what devices run.
 *
 * Edgeship int8 is weight-only (per-channel int8 weights behind DequantizeLinear). ORT keeps
 * DequantizeLinear nodes unfolded by default, so that activation-quantized (QDQ) models can fuse
 * into int8 kernels; for weight-only models that means dequantizing every weight on every run
 * (Silero VAD: 2.6x slower than float32). `disable_quant_qdq` lets constant folding dequantize
 * them once at load: the download stays 3.4x smaller and inference runs at float32 speed, with
 * the same numbers (the folded weights are the values DequantizeLinear would compute).
 */
export function onnxSessionOptions(quantization: Release['quantization']): OnnxSessionOptions {
  return quantization.method === 'int8'
    ? { graphOptimizationLevel: 'all', extra: { session: { disable_quant_qdq: '1' } } }
    : { graphOptimizationLevel: 'all' };
}
