/**
 * Node flags that run the workspaces' TypeScript from source, for tests and benches that spawn a
 * TS script: tsx compiles it and the "edgeship-source" export condition resolves every
 * @edgeship/* import to its sources (what users install resolves to the built dist/). The bins
 * (cli/bin, update-server/bin) do the same by themselves in a checkout; the flag is harmless there.
 */
export const SOURCE_NODE_ARGS: readonly string[] = ['--conditions=edgeship-source', '--import', 'tsx'];

/** Just the condition, for a bin or a plain .mjs script. */
export const SOURCE_CONDITION_ARG = '--conditions=edgeship-source';
