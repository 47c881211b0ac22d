import { join } from 'node:path';
import {
  generateSigningKey,
  type KeySet,
  PublicKeyEntrySchema,
  parseValue,
  publicEntry,
  type SigningKeyPair,
  signKeySet,
} from '@edgeship/protocol';
import type { Command } from 'commander';
import { z } from 'zod';
import { readJsonFile, writeJsonFile } from './files.ts';
import { CliError, type OutputOptions, print } from './output.ts';

const SigningKeyPairSchema = z.strictObject({
  keyId: z.string(),
  publicKey: z.string(),
  privateKey: z.string(),
});
const DAY = 86_400_000;

export async function readSigningKey(path: string): Promise<SigningKeyPair> {
  const value = await readJsonFile(path);
  const result = SigningKeyPairSchema.safeParse(value);
  if (!result.success) throw new CliError(`${path} is not an Edgeship private key`);
  return result.data;
}

/** A public key from a private key file or a public key file alike. */
async function readPublicKey(path: string) {
  const value = (await readJsonFile(path)) as Record<string, unknown>;
  return parseValue(PublicKeyEntrySchema, { keyId: value.keyId, publicKey: value.publicKey }, path);
}

export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('create root, online and publisher Ed25519 keys and the root-signed key set')
    .option('--dir <dir>', 'where to write the keys', 'keys')
    .option('--expires-days <days>', 'key set lifetime in days', '365')
    .option('--max-manifest-days <days>', 'longest manifest lifetime devices accept', '30')
    .option('--json', 'print JSON')
    .action(async (opts: { dir: string; expiresDays: string; maxManifestDays: string } & OutputOptions) => {
      const days = positiveInt(opts.expiresDays, '--expires-days');
      const manifestDays = manifestLifetimeDays(opts.maxManifestDays);
      const [root, online, publisher] = await Promise.all([
        generateSigningKey(),
        generateSigningKey(),
        generateSigningKey(),
      ]);
      await writeJsonFile(join(opts.dir, 'root.key.json'), root, { secret: true });
      await writeJsonFile(join(opts.dir, 'online.key.json'), online, { secret: true });
      await writeJsonFile(join(opts.dir, 'publisher.key.json'), publisher, { secret: true });
      await writeJsonFile(join(opts.dir, 'root.pub.json'), { keys: [publicEntry(root)], threshold: 1 });
      const keySet = await signKeySet(
        newKeySet(1, days, manifestDays, [publicEntry(online)], [publicEntry(publisher)]),
        [root],
      );
      await writeJsonFile(join(opts.dir, 'keyset.json'), keySet);
      print(
        opts,
        { dir: opts.dir, root: root.keyId, online: online.keyId, publisher: publisher.keyId },
        () => [
          `wrote keys to ${opts.dir}/ (root ${root.keyId.slice(0, 12)}…, online ${online.keyId.slice(0, 12)}…, publisher ${publisher.keyId.slice(0, 12)}…)`,
          'keep root.key.json offline; pin root.pub.json in your app',
        ],
      );
    });

  program
    .command('keyset')
    .description('sign a new key set version with the root key (to rotate online or publisher keys)')
    .requiredOption('--root <file>', 'root private key file')
    .requiredOption('--online <files...>', 'online key files (public or private)')
    .requiredOption('--publisher <files...>', 'publisher key files (public or private)')
    .requiredOption('--keyset-version <n>', 'key set version, above every earlier one')
    .option('--expires-days <days>', 'lifetime in days', '365')
    .option('--max-manifest-days <days>', 'longest manifest lifetime devices accept', '30')
    .option('--out <file>', 'output file', 'keyset.json')
    .option('--json', 'print JSON')
    .action(
      async (
        opts: {
          root: string;
          online: string[];
          publisher: string[];
          keysetVersion: string;
          expiresDays: string;
          maxManifestDays: string;
          out: string;
        } & OutputOptions,
      ) => {
        const root = await readSigningKey(opts.root);
        const keySet = await signKeySet(
          newKeySet(
            positiveInt(opts.keysetVersion, '--keyset-version'),
            positiveInt(opts.expiresDays, '--expires-days'),
            manifestLifetimeDays(opts.maxManifestDays),
            await Promise.all(opts.online.map(readPublicKey)),
            await Promise.all(opts.publisher.map(readPublicKey)),
          ),
          [root],
        );
        await writeJsonFile(opts.out, keySet);
        print(opts, { out: opts.out, version: keySet.signed.version }, () => [
          `wrote key set v${keySet.signed.version} to ${opts.out}`,
        ]);
      },
    );
}

function newKeySet(
  version: number,
  days: number,
  manifestDays: number,
  onlineKeys: KeySet['onlineKeys'],
  publisherKeys: KeySet['publisherKeys'],
): KeySet {
  const now = Date.now();
  return {
    type: 'edgeship/keyset',
    version,
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + days * DAY).toISOString(),
    threshold: { root: 1, manifest: 1, release: 1 },
    onlineKeys,
    publisherKeys,
    // Devices refuse a manifest valid for longer: bounds what a stolen online key can sign.
    maxManifestLifetimeSeconds: manifestDays * 86_400,
  };
}

/** The server signs manifests for 7 days by default; the protocol caps a key set at 366. */
function manifestLifetimeDays(text: string): number {
  const days = positiveInt(text, '--max-manifest-days');
  if (days > 366) throw new CliError('--max-manifest-days must be at most 366');
  return days;
}

export function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new CliError(`${flag} must be a positive integer`);
  return n;
}
