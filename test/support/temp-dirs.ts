import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Temporary directories a test file makes as it goes, removed together at its end. */
export function tempDirs() {
  const made: string[] = [];
  return {
    /** A fresh directory under the OS temp dir, named `prefix` and a random suffix. */
    async make(prefix: string): Promise<string> {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      made.push(dir);
      return dir;
    },
    async removeAll(): Promise<void> {
      await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}
