import { describe, expect, it } from 'vitest';
import type { NamedTensors } from '../engines/tensor.ts';
import { runSequence, type SequenceRequest } from './sequence.ts';

/** A real recurrent computation: h' = 0.5 h + x, y = 2 h' (elementwise), per step. */
async function accumulate(inputs: NamedTensors): Promise<NamedTensors> {
  const x = inputs.x!.data as Float32Array;
  const h = inputs.h!.data as Float32Array;
  const next = x.map((v, i) => 0.5 * h[i]! + v);
  return {
    y: { data: next.map((v) => 2 * v), dims: inputs.x!.dims },
    hN: { data: next, dims: inputs.h!.dims },
  };
}

function steps(count: number): Float32Array {
  return Float32Array.from({ length: count * 2 }, (_, i) => i + 1);
}

describe('runSequence', () => {
  it('gives what step-by-step calls give, stacking outputs and returning the carried state', async () => {
    let h: Float32Array = new Float32Array(2);
    const expected: number[] = [];
    const xs = steps(5);
    for (let i = 0; i < 5; i++) {
      const out = await accumulate({
        x: { data: xs.slice(i * 2, i * 2 + 2), dims: [2] },
        h: { data: h, dims: [2] },
      });
      expected.push(...(out.y!.data as Float32Array));
      h = out.hN!.data as Float32Array;
    }
    const result = await runSequence(
      {
        steps: { x: { data: steps(5), dims: [5, 2] } },
        inputs: { h: { data: new Float32Array(2), dims: [2] } },
        carry: { hN: 'h' },
      },
      accumulate,
    );
    expect(result.outputs.y).toEqual({ data: Float32Array.from(expected), dims: [5, 2] });
    expect(Object.keys(result.outputs)).toEqual(['y']); // the carried output is state, not an output
    expect(result.state.h).toEqual({ data: h, dims: [2] });
  });

  it('continues from the returned state: two halves equal the whole', async () => {
    const whole = await runSequence(
      {
        steps: { x: { data: steps(6), dims: [6, 2] } },
        inputs: { h: { data: new Float32Array(2), dims: [2] } },
        carry: { hN: 'h' },
      },
      accumulate,
    );
    const all = steps(6);
    const first = await runSequence(
      {
        steps: { x: { data: all.slice(0, 6), dims: [3, 2] } },
        inputs: { h: { data: new Float32Array(2), dims: [2] } },
        carry: { hN: 'h' },
      },
      accumulate,
    );
    const second = await runSequence(
      { steps: { x: { data: all.slice(6), dims: [3, 2] } }, inputs: first.state, carry: { hN: 'h' } },
      accumulate,
    );
    expect([...(first.outputs.y!.data as Float32Array), ...(second.outputs.y!.data as Float32Array)]).toEqual(
      [...(whole.outputs.y!.data as Float32Array)],
    );
  });

  it("carries the release's signed pairs by default; a caller's carry replaces them", async () => {
    const signed = [{ output: 'hN', input: 'h' }];
    const call = () => ({
      steps: { x: { data: steps(4), dims: [4, 2] } },
      inputs: { h: { data: new Float32Array(2), dims: [2] } },
    });
    const bySigned = await runSequence(call(), accumulate, signed);
    const byCaller = await runSequence({ ...call(), carry: { hN: 'h' } }, accumulate);
    expect(bySigned).toEqual(byCaller);
    expect(Object.keys(bySigned.state)).toEqual(['h']);

    // An empty carry runs every step from the given state: hN is then an ordinary, stacked output.
    const uncarried = await runSequence({ ...call(), carry: {} }, accumulate, signed);
    expect(uncarried.state).toEqual({});
    expect(uncarried.outputs.hN!.dims).toEqual([4, 2]);
    expect(Array.from(uncarried.outputs.y!.data as Float32Array)).toEqual(Array.from(steps(4), (x) => 2 * x));
    expect(uncarried.outputs.y).not.toEqual(bySigned.outputs.y);
  });

  it('refuses malformed calls with E_INPUT', async () => {
    const h = { data: new Float32Array(2), dims: [2] };
    const cases: SequenceRequest[] = [
      { steps: {}, inputs: { h }, carry: { hN: 'h' } },
      { steps: { x: { data: steps(2), dims: [3, 2] } }, inputs: { h }, carry: { hN: 'h' } },
      { steps: { x: { data: steps(2), dims: [2, 2] } }, inputs: {}, carry: { hN: 'h' } },
      { steps: { x: { data: steps(2), dims: [2, 2] } }, inputs: { h, x: h }, carry: { hN: 'h' } },
      { steps: { x: { data: steps(2), dims: [2, 2] } }, inputs: { h }, carry: { nope: 'h' } },
    ];
    for (const call of cases) {
      await expect(runSequence(call, accumulate)).rejects.toMatchObject({ code: 'E_INPUT' });
    }
  });
});
