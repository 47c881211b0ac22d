// A structured model card and self-reported lineage go from `edgeship publish` into the signed
// release, checked before any work; a malformed card is refused with E_MALFORMED.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, verifyThreshold } from '@edgeship/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { TEST_MODEL_CARD } from '../../../test/support/model-card.ts';
import { TINY_CONTRACT, tinyOnnxModel } from '../../../test/support/tiny-models.ts';
import { publishModel } from './publish.ts';

const LINEAGE = {
  trainingCode: 'git+https://example.org/vad.git#4f2c1e0',
  data: 'recordings-2026-11 (sha256 0c1d…)',
  hyperparameters: { epochs: 12, learningRate: 0.001, augment: true },
  parent: '1.0.0',
};

describe('edgeship publish --card --lineage', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgeship-card-'));
    await writeFile(join(dir, 'model.onnx'), tinyOnnxModel('identity'));
    await writeFile(join(dir, 'card.json'), JSON.stringify(TEST_MODEL_CARD));
    await writeFile(join(dir, 'lineage.json'), JSON.stringify(LINEAGE));
    await writeFile(
      join(dir, 'bad-card.json'),
      JSON.stringify({ ...TEST_MODEL_CARD, evaluation: [{ metric: 'accuracy' }] }),
    );
  });

  it('signs the structured card and the lineage into the release', async () => {
    const key = await generateSigningKey();
    const result = await publishModel({
      model: join(dir, 'model.onnx'),
      name: 'carded',
      version: '1.1.0',
      contract: TINY_CONTRACT,
      card: join(dir, 'card.json'),
      lineage: join(dir, 'lineage.json'),
      publisherKey: key,
      dryRun: true,
    });
    expect(result.signed.signed.modelCard).toEqual(TEST_MODEL_CARD);
    expect(result.signed.signed.lineage).toEqual(LINEAGE);
    // Signed: a reader checks them with the publisher's key like every other field.
    const publisher = [{ keyId: key.keyId, publicKey: key.publicKey }];
    await expect(verifyThreshold(result.signed, publisher, 1, 'release')).resolves.toHaveLength(1);
    const edited = structuredClone(result.signed);
    edited.signed.modelCard!.limitations = 'None.';
    await expect(verifyThreshold(edited, publisher, 1, 'release')).rejects.toMatchObject({
      code: 'E_SIGNATURE',
    });
  });

  it('refuses a malformed card before any work, naming the file and the field', async () => {
    const error = await publishModel({
      model: join(dir, 'model.onnx'),
      name: 'carded',
      version: '1.2.0',
      contract: TINY_CONTRACT,
      card: join(dir, 'bad-card.json'),
      publisherKey: await generateSigningKey(),
      dryRun: true,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'E_MALFORMED',
      message: expect.stringMatching(/bad-card\.json.*evaluation/),
    });
  });
});
