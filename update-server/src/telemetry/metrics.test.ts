import { Registry } from 'prom-client';
import { expect, it } from 'vitest';
import { TelemetryMetrics } from './metrics.ts';
import { makeBatch, makeRecord } from './testing.ts';

it('sums inferences, errors by code and latency per release across batches, read at scrape time', async () => {
  const registry = new Registry();
  const metrics = new TelemetryMetrics(registry, async () => []);
  const record = (backend: 'wasm' | 'webgpu', errors: Record<string, number>) =>
    makeRecord({ model: 'm', version: '1.0.0', backend, latenciesMs: [3, 30], inferences: 5, errors });
  metrics.observe(makeBatch('device-1', [record('wasm', { E_INPUT: 1 }), record('webgpu', {})]));
  metrics.observe(makeBatch('device-2', [record('wasm', { E_INPUT: 2, E_HEALTH_CHECK: 0 })]));
  const text = await registry.metrics();
  const labels = (backend: string) =>
    `app="demo-app",channel="stable",model="m",version="1.0.0",backend="${backend}",role="active"`;
  expect(text).toContain(`edgeship_model_inferences_total{${labels('wasm')}} 10`);
  expect(text).toContain(`edgeship_model_inferences_total{${labels('webgpu')}} 5`);
  expect(text).toContain(`edgeship_model_errors_total{${labels('wasm')},code="E_INPUT"} 3`);
  expect(text).not.toContain('code="E_HEALTH_CHECK"');
  expect(text).toContain(`edgeship_model_inference_latency_seconds_count{${labels('wasm')}} 4`);
  expect(text).toContain(`edgeship_model_inference_latency_seconds_bucket{${labels('wasm')},le="0.005"} 2`);
  expect(text).toContain(`edgeship_model_inference_latency_seconds_bucket{${labels('webgpu')},le="+Inf"} 2`);
});
