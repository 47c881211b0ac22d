/**
 * Where onnxruntime-web's WASM build comes from when the app names no `wasmPaths`: the two files
 * of its JSEP build (WebGPU and WASM in one), shipped beside the prebuilt worker in
 * `dist/worker/ort/`. The URLs are literals next to `import.meta.url` on purpose: Vite and
 * webpack see them, emit exactly these two files under content-hashed names (so an immutable
 * HTTP cache entry can never outlive an upgrade) and rewrite the URLs; a plain static server
 * or an esbuild app that copies `dist/worker/` serves them from where they are.
 */
export interface OrtWasmPaths {
  mjs: string;
  wasm: string;
}

export function defaultOrtWasmPaths(): OrtWasmPaths {
  return {
    mjs: new URL('./ort/ort-wasm-simd-threaded.jsep.mjs', import.meta.url).href,
    wasm: new URL('./ort/ort-wasm-simd-threaded.jsep.wasm', import.meta.url).href,
  };
}

const EXPECTED_TYPE = { mjs: /javascript/, wasm: /wasm/ } as const;

/**
 * Why ORT's files cannot be loaded from `paths`, naming the URL (a 404, an HTML fallback page
 * in place of the file, a network error), or null when both files are there.
 */
export async function ortAssetProblem(paths: unknown): Promise<string | null> {
  const urls = resolvePaths(paths);
  if (!urls) return null;
  for (const kind of ['mjs', 'wasm'] as const) {
    const url = urls[kind];
    try {
      const response = await fetch(url, { method: 'HEAD', cache: 'no-store' });
      const type = response.headers.get('content-type') ?? '';
      if (!response.ok) return `onnxruntime-web's ${kind} file ${url} answered HTTP ${response.status}`;
      if (type && !EXPECTED_TYPE[kind].test(type)) {
        return `onnxruntime-web's ${kind} file ${url} is served as ${type}: a fallback page, not the file`;
      }
    } catch (error) {
      return `onnxruntime-web's ${kind} file ${url} could not be fetched: ${String(error)}`;
    }
  }
  return null;
}

function resolvePaths(paths: unknown): OrtWasmPaths | null {
  const base = globalThis.location?.href;
  if (typeof paths === 'string') {
    return {
      mjs: new URL('ort-wasm-simd-threaded.jsep.mjs', new URL(paths, base)).href,
      wasm: new URL('ort-wasm-simd-threaded.jsep.wasm', new URL(paths, base)).href,
    };
  }
  const given = paths as Partial<Record<'mjs' | 'wasm', string | URL>> | undefined;
  if (!given?.mjs || !given.wasm) return null;
  return { mjs: new URL(given.mjs, base).href, wasm: new URL(given.wasm, base).href };
}
