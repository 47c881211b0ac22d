import { join } from 'node:path';
import {
  chunkBoundaries,
  HashMismatchError,
  LengthMismatchError,
  ManifestEnvelopeSchema,
  parseValue,
  type Release,
  releaseId,
  SignedKeySetSchema,
  SignedReleaseSchema,
  sha256Hex,
  type TrustedRoot,
  verifyKeySet,
  verifyManifest,
  verifyRelease,
} from '@edgeship/protocol';
import type { Command } from 'commander';
import { z } from 'zod';
import { readBytes, readJsonFile } from './files.ts';
import { CliError, type OutputOptions, print } from './output.ts';

const TrustedRootSchema = z.strictObject({
  keys: z.array(z.strictObject({ keyId: z.string(), publicKey: z.string() })).min(1),
  threshold: z.int().min(1),
});

interface VerifyOptions extends OutputOptions {
  root: string;
  app?: string;
  channel?: string;
  keyset?: string;
  files?: string;
}

export function registerVerify(program: Command): void {
  program
    .command('verify <file>')
    .description('verify a manifest, a key set or a signed release offline, against the pinned root keys')
    .requiredOption('--root <file>', 'pinned root keys (root.pub.json)')
    .option('--app <app>', 'the app the manifest must be for (default: the one it names)')
    .option('--channel <channel>', 'the channel the manifest must be for (default: the one it names)')
    .option('--keyset <file>', "key set that vouches for a release's publisher key")
    .option('--files <dir>', "also check a release's files in this directory, byte for byte")
    .option('--json', 'print JSON')
    .action(async (file: string, opts: VerifyOptions) => {
      const root = parseValue(TrustedRootSchema, await readJsonFile(opts.root), opts.root) as TrustedRoot;
      const doc = (await readJsonFile(file)) as Record<string, unknown>;
      const now = new Date();
      const signedType = (doc.signed as { type?: string } | undefined)?.type;
      if (signedType === 'edgeship/manifest') {
        const envelope = parseValue(ManifestEnvelopeSchema, doc, file);
        const { manifest } = await verifyManifest(new TextDecoder().decode(await readBytes(file)), {
          root,
          app: opts.app ?? envelope.signed.app,
          channel: opts.channel ?? envelope.signed.channel,
          now,
        });
        print(
          opts,
          {
            ok: true,
            type: 'manifest',
            app: manifest.app,
            channel: manifest.channel,
            version: manifest.version,
          },
          () => [
            `ok: manifest ${manifest.app}/${manifest.channel} v${manifest.version}, expires ${manifest.expiresAt}, ${manifest.models.length} model(s)`,
          ],
        );
      } else if (signedType === 'edgeship/keyset') {
        const keySet = await verifyKeySet(parseValue(SignedKeySetSchema, doc, file), { root, now });
        print(opts, { ok: true, type: 'keyset', version: keySet.version }, () => [
          `ok: key set v${keySet.version}, expires ${keySet.expiresAt}`,
        ]);
      } else if (signedType === 'edgeship/release') {
        if (!opts.keyset) throw new CliError('verifying a release needs --keyset');
        const keySet = await verifyKeySet(
          parseValue(SignedKeySetSchema, await readJsonFile(opts.keyset), opts.keyset),
          { root, now },
        );
        const release = await verifyRelease(parseValue(SignedReleaseSchema, doc, file), keySet);
        if (opts.files) await checkFiles(release, opts.files);
        print(
          opts,
          { ok: true, type: 'release', release: releaseId(release), filesChecked: Boolean(opts.files) },
          () => [
            `ok: release ${releaseId(release)} signed by a trusted publisher${opts.files ? ', files match' : ''}`,
          ],
        );
      } else {
        throw new CliError(`${file} is not a manifest, key set or release`);
      }
    });
}

/** Checks each file's size, hash and chunking against what the publisher signed. */
async function checkFiles(release: Release, dir: string): Promise<void> {
  for (const entry of release.files) {
    const bytes = await readBytes(join(dir, entry.path));
    if (bytes.length !== entry.size)
      throw new LengthMismatchError(`${entry.path}: ${bytes.length} bytes, signed ${entry.size}`);
    if ((await sha256Hex(bytes)) !== entry.sha256)
      throw new HashMismatchError(`${entry.path}: SHA-256 differs from the signed one`);
    const cuts = chunkBoundaries(bytes);
    if (cuts.length !== entry.chunks.length || cuts.some(([, len], i) => len !== entry.chunks[i]!.size)) {
      throw new HashMismatchError(`${entry.path}: chunk boundaries differ from the signed ones`);
    }
  }
}
