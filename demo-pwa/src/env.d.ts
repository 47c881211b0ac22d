/// <reference types="vite/client" />
/** JSON of the pinned root keys ({ keys, threshold }), set at build time by scripts/start. */
declare const __EDGESHIP_TRUSTED_ROOT__: string;
/** Where onnxruntime-web's .wasm/.mjs files are served from (same origin). */
declare const __EDGESHIP_ORT_PATH__: string;
/** True in a build: only a build has a service worker to register. */
declare const __EDGESHIP_SERVICE_WORKER__: boolean;
/** Where @tensorflow/tfjs-backend-wasm's .wasm files are served from (same origin). */
declare const __EDGESHIP_TFJS_WASM_PATH__: string;
