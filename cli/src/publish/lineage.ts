import { execFile } from 'node:child_process';

/** The git commit the publish runs from, or undefined outside a repository or without git. */
export function gitCommit(cwd: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('git', ['rev-parse', 'HEAD'], { cwd, timeout: 5000 }, (error, stdout) => {
      const commit = stdout?.trim();
      resolve(!error && /^[0-9a-f]{40,64}$/.test(commit) ? commit : undefined);
    });
  });
}
