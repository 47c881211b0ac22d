import { type CanaryPolicy, DEFAULT_CANARY_POLICY } from './analysis.ts';
import type { InstallEvidence } from './evidence.ts';
import { analyzeEvidence } from './robust.ts';

// The releases robust.test.ts and robust-spread.test.ts judge: a canary 1.1.0 against a control
// 1.0.0, each expecting the energy feature uniform over its 10 bins.
const REFERENCE = { energy: Array(10).fill(0.1) };
const CANARY_RELEASE = { version: '1.1.0', references: REFERENCE };
const CONTROL_RELEASE = { version: '1.0.0', references: REFERENCE };

/** The verdict on `rows` of canary 1.1.0 against control 1.0.0, by `policy`. */
export const judge = (rows: InstallEvidence[], policy: CanaryPolicy = DEFAULT_CANARY_POLICY) =>
  analyzeEvidence(rows, CANARY_RELEASE, CONTROL_RELEASE, policy);
