import type { AdminClient } from '../../../src/admin-client.ts';

export interface ViewContext {
  api: AdminClient;
  /** Writes need the operator role; a viewer token sees the buttons disabled. */
  canOperate: boolean;
  /** Runs an admin call; a failure shows its typed error, and the view reloads either way. */
  act(label: string, call: () => Promise<unknown>): Promise<void>;
}
