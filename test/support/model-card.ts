import type { ModelCard } from '@edgeship/protocol';

/** A model card with every field filled, for the tests that carry one through publish and governance. */
export const TEST_MODEL_CARD: ModelCard = {
  intendedUse: 'Detects speech in 16 kHz mono audio for a voice-memo app.',
  limitations: 'Not evaluated on music or on more than one speaker.',
  trainingData: 'Internal recordings, 1,200 hours, consented.',
  evaluation: [{ metric: 'accuracy', value: 0.93, dataset: 'held-out-2026-11' }],
  segments: [{ segment: 'deviceClass=low', results: [{ metric: 'accuracy', value: 0.9 }] }],
};
