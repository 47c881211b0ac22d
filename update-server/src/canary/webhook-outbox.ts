import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client';
import type { Database } from '../storage/schema.ts';
import { LoopTimers } from './loop-timers.ts';
import { postWebhook, type WebhookOptions } from './webhook.ts';

export interface OutboxOptions extends WebhookOptions {
  /** Retries wait `baseDelayMs` × 2^(attempt − 1), at most this long. */
  maxDelayMs?: number;
  /** How often the leader looks for deliveries that are due (besides right after each enqueue). */
  pollMs?: number;
  /** Delivered (or given up) deliveries are deleted once this old. */
  keepMs?: number;
  now?: () => number;
}

/**
 * Defaults: 15 attempts with a first retry after 0.5 s, doubling up to an hour, so a receiver may
 * be down for about three hours (a deploy, an outage of the chat or paging service behind it)
 * without missing a halt.
 */
export const DEFAULT_OUTBOX = {
  attempts: 15,
  baseDelayMs: 500,
  maxDelayMs: 3_600_000,
  pollMs: 5_000,
  keepMs: 7 * 86_400_000,
} as const;

/** A claimed delivery is not tried by anyone else for this long (an overlapping leader). */
const CLAIM_MS = 60_000;
const BATCH = 50;

export type OutboxOutcome = 'delivered' | 'retried' | 'gave-up';

/**
 * Webhook events, delivered at least once: `enqueue` writes the event to `webhook_deliveries`
 * before it returns, so a halt announced by a process that then crashes, or to a receiver that is
 * down, is delivered later, by whichever process leads (the dispatcher runs on the leader only).
 * Each row keeps its delivery id (the Standard Webhooks `webhook-id`) across attempts and
 * processes, so a receiver drops a repeat it already handled; a row is claimed before each
 * attempt, so two leaders overlapping for an interval do not both send it.
 */
export class WebhookOutbox {
  private readonly opts: Required<Omit<OutboxOptions, 'secret' | 'fetch' | 'now' | 'timeoutMs'>> &
    Pick<OutboxOptions, 'secret' | 'fetch' | 'timeoutMs'>;
  private readonly now: () => number;
  /** The poll, and the wake-up for a retry due before the next poll. */
  private readonly timers = new LoopTimers();
  private running: Promise<void> | null = null;
  private again = false;
  private active = false;
  private readonly metrics = {
    outcome: (_outcome: OutboxOutcome) => {},
    pending: (_n: number) => {},
  };

  constructor(
    private readonly db: Kysely<Database>,
    private readonly url: string | undefined,
    private readonly log: Logger,
    options: OutboxOptions = {},
  ) {
    const { now, ...rest } = options;
    this.opts = { ...DEFAULT_OUTBOX, ...withoutUndefined(rest) };
    this.now = now ?? Date.now;
  }

  /** Registers `edgeship_webhook_deliveries_total{outcome}` and `edgeship_webhook_pending`. */
  attachMetrics(registry: PromRegistry): void {
    const counter = new Counter({
      name: 'edgeship_webhook_deliveries_total',
      help: 'Webhook delivery attempts by this process: delivered, retried later, or given up',
      labelNames: ['outcome'],
      registers: [registry],
    });
    const gauge = new Gauge({
      name: 'edgeship_webhook_pending',
      help: 'Webhook deliveries not yet delivered nor given up, as the leader last saw them',
      registers: [registry],
    });
    this.metrics.outcome = (outcome) => counter.inc({ outcome });
    this.metrics.pending = (n) => gauge.set(n);
  }

  /** Stores the event for delivery (durably, before returning) and has the leader send it now. */
  async enqueue(event: Record<string, unknown>): Promise<string | null> {
    if (!this.url) return null;
    const id = crypto.randomUUID();
    const at = this.now();
    await this.db
      .insertInto('webhook_deliveries')
      .values({
        id,
        event: String(event.event ?? 'unknown'),
        body: JSON.stringify({ deliveryId: id, ...event }),
        created_ms: at,
        attempts: 0,
        next_attempt_ms: at,
        delivered_ms: null,
        gave_up_ms: null,
        last_error: null,
      })
      .execute();
    this.kick();
    return id;
  }

  /** This process became the leader: deliver what is due, now and every `pollMs`. */
  start(): void {
    if (this.active || !this.url) return;
    this.active = true;
    this.timers.every(this.opts.pollMs, () => this.kick());
    this.kick();
  }

  async pause(): Promise<void> {
    this.active = false;
    this.timers.clear();
    await this.running;
  }

  /** Waits for the pass under way, and for one more if deliveries were enqueued meanwhile. */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    if (!this.active) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.dispatch();
        } catch (error) {
          this.log.error({ err: error }, 'webhook dispatch failed');
        }
      } while (this.again && this.active);
    })().finally(() => {
      this.running = null;
    });
  }

  /** One pass: every due delivery, one attempt each, in the order they were enqueued. */
  private async dispatch(): Promise<void> {
    const now = this.now();
    const due = await this.db
      .selectFrom('webhook_deliveries')
      .select(['id', 'event', 'body', 'attempts', 'next_attempt_ms'])
      .where('delivered_ms', 'is', null)
      .where('gave_up_ms', 'is', null)
      .where('next_attempt_ms', '<=', now)
      .orderBy('created_ms')
      .limit(BATCH)
      .execute();
    for (const row of due) {
      if (!this.active) return;
      const claimed = await this.db
        .updateTable('webhook_deliveries')
        .set({ next_attempt_ms: now + CLAIM_MS })
        .where('id', '=', row.id)
        .where('next_attempt_ms', '=', row.next_attempt_ms)
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) continue; // another leader has it
      await this.attempt(row.id, row.event, row.body, Number(row.attempts) + 1);
    }
    await this.db
      .deleteFrom('webhook_deliveries')
      .where((eb) =>
        eb.or([
          eb('delivered_ms', '<', now - this.opts.keepMs),
          eb('gave_up_ms', '<', now - this.opts.keepMs),
        ]),
      )
      .execute();
    const pending = await this.db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('delivered_ms', 'is', null)
      .where('gave_up_ms', 'is', null)
      .executeTakeFirst();
    this.metrics.pending(Number(pending?.n ?? 0));
    if (due.length === BATCH) this.again = true;
    else await this.wakeForNextRetry();
  }

  /** A retry due before the next poll gets a timer of its own (the first ones wait 0.5 s, 1 s...). */
  private async wakeForNextRetry(): Promise<void> {
    const next = await this.db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.min('next_attempt_ms').as('at'))
      .where('delivered_ms', 'is', null)
      .where('gave_up_ms', 'is', null)
      .executeTakeFirst();
    if (next?.at === null || next?.at === undefined) return;
    const wait = Number(next.at) - this.now();
    if (wait >= this.opts.pollMs) return;
    this.timers.wakeAfter(Math.max(0, wait), () => this.kick());
  }

  private async attempt(id: string, event: string, body: string, attempt: number): Promise<void> {
    const result = await postWebhook(this.url!, id, body, this.opts);
    const at = this.now();
    if (result.ok) {
      await this.db
        .updateTable('webhook_deliveries')
        .set({ attempts: attempt, delivered_ms: at, last_error: null })
        .where('id', '=', id)
        .execute();
      this.metrics.outcome('delivered');
      return;
    }
    const last = attempt >= this.opts.attempts;
    const delay = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (attempt - 1));
    await this.db
      .updateTable('webhook_deliveries')
      .set({
        attempts: attempt,
        last_error: result.error.slice(0, 500),
        ...(last ? { gave_up_ms: at } : { next_attempt_ms: at + delay }),
      })
      .where('id', '=', id)
      .execute();
    this.metrics.outcome(last ? 'gave-up' : 'retried');
    if (last) this.log.error({ url: this.url, event, id, attempts: attempt }, 'webhook gave up');
    else
      this.log.warn({ url: this.url, event, id, attempt, err: result.error }, 'webhook failed, will retry');
  }
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
