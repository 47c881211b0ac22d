import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CliError } from './output.ts';

export async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
}

export async function readJsonFile(path: string): Promise<unknown> {
  const text = new TextDecoder().decode(await readBytes(path));
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${path} is not JSON`);
  }
}

/** Writes a file; secrets get mode 0600 and never overwrite an existing key. */
export async function writeJsonFile(
  path: string,
  value: unknown,
  opts: { secret?: boolean } = {},
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  try {
    await writeFile(path, `${JSON.stringify(value, null, 2)}\n`, {
      flag: opts.secret ? 'wx' : 'w',
      mode: opts.secret ? 0o600 : 0o644,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new CliError(`${path} exists; refusing to overwrite a key`);
    throw error;
  }
  if (opts.secret) await chmod(path, 0o600);
}
