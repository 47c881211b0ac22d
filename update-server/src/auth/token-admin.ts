import { invalidState, notFound, ValidationError } from '../http/api-errors.ts';
import type { Actor } from '../registry/service.ts';
import type { RegistryStore, Role, TokenRecord } from '../storage/types.ts';
import { insertNewToken, type TokenState, tokenState } from './tokens.ts';

/** What the API shows of a token: never its hash. */
export interface TokenSummary {
  id: string;
  name: string;
  role: Role;
  state: TokenState;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

export interface IssueTokenInput {
  name: string;
  role: Role;
  /** Days until it expires; null: never (discouraged, like the bootstrap tokens). */
  expiresInDays: number | null;
}

/**
 * Names the audit trail must keep unambiguous: the bootstrap tokens' and the canary analysis'
 * (an admin could otherwise create a token that acts in their name).
 */
export function isReservedTokenName(name: string): boolean {
  return name.startsWith('bootstrap-') || name === 'canary-analysis';
}

export function summarizeToken(token: TokenRecord, at: Date): TokenSummary {
  const { hash: _hash, ...rest } = token;
  return { ...rest, state: tokenState(token, at) };
}

/** Token lifecycle for the admin role; each change and its audit entry commit together. */
export class TokenAdmin {
  constructor(
    private readonly store: RegistryStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async issue(actor: Actor, input: IssueTokenInput): Promise<TokenSummary & { token: string }> {
    if (isReservedTokenName(input.name)) {
      throw new ValidationError(`name: "${input.name}" is reserved`);
    }
    const now = this.now();
    const expiresAt =
      input.expiresInDays === null ? null : new Date(now.getTime() + input.expiresInDays * 86_400_000);
    return this.store.transaction(async (tx) => {
      const { token, record } = await insertNewToken(tx, input.name, input.role, { now, expiresAt });
      await tx.appendAudit({
        at: now.toISOString(),
        actor: actor.name,
        action: 'token.create',
        app: null,
        channel: null,
        model: null,
        details: { id: record.id, name: record.name, role: record.role, expiresAt: record.expiresAt },
      });
      return { ...summarizeToken(record, now), token };
    });
  }

  async list(): Promise<TokenSummary[]> {
    const at = this.now();
    return (await this.store.listTokens()).map((t) => summarizeToken(t, at));
  }

  async revoke(actor: Actor, id: string): Promise<TokenSummary> {
    const now = this.now();
    return this.store.transaction(async (tx) => {
      const token = await tx.getToken(id);
      if (!token) throw notFound(`token ${id}`);
      if (token.revokedAt !== null) throw invalidState(`token ${id} (${token.name}) is revoked already`);
      if (token.role === 'admin' && tokenState(token, now) === 'active') {
        const admins = (await tx.listTokens()).filter(
          (t) => t.role === 'admin' && tokenState(t, now) === 'active',
        );
        // Revoking the last admin would leave nobody able to create or revoke tokens.
        if (admins.length <= 1) {
          throw invalidState('this is the last active admin token: create another admin token first');
        }
      }
      await tx.revokeToken(id, now.toISOString());
      await tx.appendAudit({
        at: now.toISOString(),
        actor: actor.name,
        action: 'token.revoke',
        app: null,
        channel: null,
        model: null,
        details: { id: token.id, name: token.name, role: token.role },
      });
      return summarizeToken({ ...token, revokedAt: now.toISOString() }, now);
    });
  }
}
