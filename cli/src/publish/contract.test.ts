import { describe, expect, it } from 'vitest';
import { ContractSchema } from './contract.ts';

const tensors = {
  inputs: [
    { name: 'input', dtype: 'float32', shape: [1, 512] },
    { name: 'state', dtype: 'float32', shape: [2, 1, 128] },
  ],
  outputs: [
    { name: 'output', dtype: 'float32', shape: [1, 1] },
    { name: 'stateN', dtype: 'float32', shape: [2, 1, 128] },
  ],
};

function issuesOf(value: unknown): string[] {
  const parsed = ContractSchema.safeParse(value);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('the contract file’s recurrent pairs', () => {
  it('reads recurrent, and 0.2.0’s carry map as the same pairs', () => {
    const pairs = [{ output: 'stateN', input: 'state' }];
    for (const file of [
      { ...tensors, recurrent: pairs },
      { ...tensors, carry: { stateN: 'state' } },
    ]) {
      const contract = ContractSchema.parse(file);
      expect(contract.recurrent).toEqual(pairs);
      expect(contract.carry).toEqual({ stateN: 'state' });
    }
    expect(ContractSchema.parse(tensors)).toMatchObject({ recurrent: [], carry: {} });
  });

  it('refuses names the contract does not have, under the field the file used, and both fields at once', () => {
    expect(issuesOf({ ...tensors, recurrent: [{ output: 'stateN', input: 'h' }] })).toEqual([
      'recurrent.0.input: "h" is not one of the inputs',
    ]);
    expect(issuesOf({ ...tensors, carry: { hN: 'state' } })).toEqual([
      'carry.hN: "hN" is not one of the outputs',
    ]);
    expect(issuesOf({ ...tensors, carry: {}, recurrent: [] })).toEqual([
      'carry: give recurrent or carry, not both',
    ]);
  });
});
