// Writes src/admin-api.gen.ts, the types of the OpenAPI document that admin-client.ts is built on:
//   npm run generate:api -w update-server
// The file is generated, not a source: git ignores it, and `npm run typecheck` (so `npm test`)
// and the package build write it. openapi.test.ts fails when it differs from a fresh generation.
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';
import { startServer } from '../src/server.ts';

export const GENERATED_TYPES = fileURLToPath(new URL('../src/admin-api.gen.ts', import.meta.url));

const BANNER = `// Generated from GET /v1/openapi.json by scripts/generate-admin-api.ts (openapi-typescript).
// Do not edit: change the routes; \`npm run generate:api -w update-server\` writes it.
`;

/** The document a fresh server serves (SQLite in a temporary directory, telemetry on). */
export async function serveDocument(): Promise<unknown> {
  const dataDir = await mkdtemp(join(tmpdir(), 'edgeship-openapi-'));
  const server = await startServer({ dataDir, createKeys: true, logLevel: 'silent' });
  try {
    return await (await fetch(`${server.url}/v1/openapi.json`)).json();
  } finally {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export async function generateAdminApiTypes(document: unknown): Promise<string> {
  // A field with a default is optional to send (the document says so); openapi-typescript's
  // default would make it required.
  const ast = await openapiTS(document as Parameters<typeof openapiTS>[0], { defaultNonNullable: false });
  return BANNER + astToString(ast);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const types = await generateAdminApiTypes(await serveDocument());
  // Unchanged: left alone. Changed: replaced whole (a reader never sees half a file).
  if ((await readFile(GENERATED_TYPES, 'utf8').catch(() => null)) !== types) {
    await writeFile(`${GENERATED_TYPES}.${process.pid}.tmp`, types);
    await rename(`${GENERATED_TYPES}.${process.pid}.tmp`, GENERATED_TYPES);
    console.log(`wrote ${GENERATED_TYPES}`);
  }
}
