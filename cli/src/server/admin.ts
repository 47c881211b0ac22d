// The admin client alone (its own export), not the package index: @edgeship/update-server's index
// also loads the whole server stack (Hono, SQLite, PostgreSQL drivers), 0.6 s more on every command.
import { AdminClient } from '@edgeship/update-server/admin-client';
import { CliError, EXIT } from '../commands/output.ts';

export {
  AdminApiError,
  AdminClient,
  type ChunkReader,
  type FleetSummary,
  type ReleaseSummary,
  type TokenSummary,
  type UploadProgress,
} from '@edgeship/update-server/admin-client';

export interface ServerOptions {
  server?: string;
  token?: string;
}

/** The server and token from flags, else EDGESHIP_SERVER and EDGESHIP_TOKEN. */
export function adminClient(opts: ServerOptions, tokenEnv = 'EDGESHIP_TOKEN'): AdminClient {
  const server = opts.server ?? process.env.EDGESHIP_SERVER;
  const token = opts.token ?? process.env[tokenEnv];
  if (!server) throw new CliError('no server: pass --server <url> or set EDGESHIP_SERVER', EXIT.usage);
  if (!token) throw new CliError(`no token: pass --token or set ${tokenEnv}`, EXIT.usage, 'E_AUTH');
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new CliError(`--server ${server} is not a URL`, EXIT.usage);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`--server ${server} is not an http(s) URL`, EXIT.usage);
  }
  return new AdminClient(server, token);
}
