/** JSON of the pinned root keys ({ keys, threshold }), set at build time by scripts/start. */
declare const __EDGESHIP_TRUSTED_ROOT__: string;
