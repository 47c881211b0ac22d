import { CompiledQuery, type Insertable } from 'kysely';
import type { Database } from '../storage/schema.ts';
import type { IngestTransaction } from './store.ts';

/**
 * The ingest transaction's statements on SQLite, each one fixed text with the group's rows or keys
 * as one JSON parameter, handed to the driver as compiled (storage/statement-cache.ts prepares
 * each text once). Kysely's builder made and compiled a multi-row `VALUES` list anew for every
 * group (operation nodes, a placeholder and a parameter per value), and each group size was a
 * statement text of its own, prepared again; Kysely was 8% of the ingest server's event-loop CPU
 * (perf, 64 connections), 4.7% after (the canary evidence's statements). The SQL is what Kysely's
 * was, and SQLite reads a JSON parameter at about the cost of as many bound values (a 50-id lookup:
 * 45 µs bound, 56 µs through json_each, one index probe per id either way; a 50-row insert: the
 * same within noise). The rows go as arrays (`value ->> 0`), through `jsonb` as in
 * telemetry/aggregate-rows.ts.
 */
/** Which of these batch ids are stored already. */
export async function knownBatchIds(trx: IngestTransaction, ids: string[]): Promise<string[]> {
  const { rows } = await trx.executeQuery<{ batch_id: string }>(
    CompiledQuery.raw(KNOWN_BATCHES, [JSON.stringify(ids)]),
  );
  return rows.map((r) => r.batch_id);
}

export interface DeviceWindowUse {
  device_id: string;
  batches: number;
  inferences: number;
  releases: string;
}

/** The devices' rows of this window in one channel (what they added so far, and their releases). */
export async function deviceWindows(
  trx: IngestTransaction,
  windowStart: number,
  app: string,
  channel: string,
  devices: string[],
): Promise<DeviceWindowUse[]> {
  const { rows } = await trx.executeQuery<DeviceWindowUse>(
    CompiledQuery.raw(DEVICE_WINDOWS, [windowStart, app, channel, JSON.stringify(devices)]),
  );
  return rows;
}

type Rows<Table extends keyof Database> = Insertable<Database[Table]>[];

export async function insertBatches(trx: IngestTransaction, rows: Rows<'telemetry_batches'>): Promise<void> {
  if (rows.length === 0) return;
  const json = JSON.stringify(rows.map((r) => BATCH_COLUMNS.map((c) => r[c])));
  await trx.executeQuery(CompiledQuery.raw(INSERT_BATCHES, [json]));
}

/** Adds to each device's row of the window, or makes it; `releases` is written whole (store.ts). */
export async function upsertDeviceWindows(
  trx: IngestTransaction,
  rows: Rows<'telemetry_device_windows'>,
): Promise<void> {
  if (rows.length === 0) return;
  const json = JSON.stringify(rows.map((r) => WINDOW_COLUMNS.map((c) => r[c])));
  await trx.executeQuery(CompiledQuery.raw(UPSERT_DEVICE_WINDOWS, [json]));
}

const BATCH_COLUMNS = [
  'batch_id',
  'device_id',
  'app',
  'channel',
  'window_start',
  'records',
  'inferences',
  'dropped',
  'received_at',
] as const;
const WINDOW_COLUMNS = [
  'app',
  'channel',
  'device_id',
  'window_start',
  'batches',
  'inferences',
  'releases',
] as const;

/** `value ->> 0, value ->> 1, …`: an array row's fields in order. */
const fields = (n: number) => Array.from({ length: n }, (_, i) => `value ->> ${i}`).join(', ');

const KNOWN_BATCHES =
  'select batch_id from telemetry_batches where batch_id in (select value from json_each(?))';

const DEVICE_WINDOWS = `select device_id, batches, inferences, releases from telemetry_device_windows
  where window_start = ? and app = ? and channel = ? and device_id in (select value from json_each(?))`;

const INSERT_BATCHES = `insert into telemetry_batches (${BATCH_COLUMNS.join(', ')})
  select ${fields(BATCH_COLUMNS.length)} from jsonb_each(jsonb(?))`;

// `where true`: without it SQLite reads `on conflict` as a join constraint of the select
// (https://sqlite.org/lang_upsert.html, "Parsing Ambiguity").
const UPSERT_DEVICE_WINDOWS = `insert into telemetry_device_windows as t (${WINDOW_COLUMNS.join(', ')})
  select ${fields(WINDOW_COLUMNS.length)} from jsonb_each(jsonb(?)) where true
  on conflict (window_start, app, channel, device_id) do update
    set batches = t.batches + excluded.batches, inferences = t.inferences + excluded.inferences,
      releases = excluded.releases`;
