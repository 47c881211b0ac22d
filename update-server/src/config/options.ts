import { InvalidArgumentError, Option } from 'commander';
import { DEFAULT_RATE_LIMITS } from '../app.ts';
import { DEFAULT_CANARY_POLICY } from '../canary/analysis.ts';
import { DEFAULT_EVIDENCE_CAPS } from '../canary/evidence.ts';
import { DEFAULT_SHADOW_POLICY } from '../canary/shadow.ts';
import { webhookSigner } from '../canary/webhook.ts';
import { DEFAULT_OUTBOX } from '../canary/webhook-outbox.ts';
import { DEFAULT_LEADER_INTERVAL_MS } from '../cluster/leader.ts';
import { LIMIT_STORE_KINDS, type LimitStoreKind } from '../http/shared-limits.ts';
import { DEFAULT_RESIGN_INTERVAL_MS } from '../registry/resigner.ts';
import type { ServerOptions } from '../server.ts';
import { DEFAULT_TELEMETRY_OPTIONS } from '../telemetry/service.ts';

/** What `edgeship-server` starts: the server's options plus what only the bin decides. */
export interface CliOptions extends ServerOptions {
  /** Serve the built dashboard at /dashboard/ (when it is there). */
  dashboard: boolean;
}

type Value = string | number | boolean;

/** One flag of `edgeship-server`: how it reads, where it lands in the options, how it is documented. */
export interface OptionSpec {
  /** Without the leading dashes. */
  flag: string;
  /** The value's placeholder (`<n>`, `<url>`); none for a boolean switch. */
  value?: string;
  help: string;
  group: string;
  /** The environment variable that sets it when the flag is absent (default EDGESHIP_<FLAG>). */
  env?: string;
  /** The server's own default (from its constants), shown in --help and passed on when unset. */
  defaultValue?: Value;
  /** Number bounds (integers unless `fraction`). */
  number?: { min: number; max?: number; fraction?: boolean };
  choices?: readonly string[];
  /** Writes the parsed value into the options. */
  set: (o: CliOptions, v: never) => void;
}

const G = {
  server: 'Server:',
  http: 'HTTP and limits:',
  cluster: 'Several processes:',
  telemetry: 'Telemetry:',
  canary: 'Canary analysis:',
  webhook: 'Webhook:',
} as const;

const canary = (o: CliOptions) => (o.canary ??= {});
const policy = (o: CliOptions) => (canary(o).policy ??= {});
const shadow = (o: CliOptions) => (canary(o).shadow ??= {});
const caps = (o: CliOptions) => (canary(o).caps ??= {});
const webhook = (o: CliOptions) => (canary(o).webhook ??= {});
const telemetry = (o: CliOptions) => (o.telemetry ??= {});
const limits = (o: CliOptions) => (o.rateLimits ??= { ...DEFAULT_RATE_LIMITS });
const limitStore = (o: CliOptions) => (o.rateLimitStore ??= { kind: 'memory' });
const deviceCap = (o: CliOptions) => (telemetry(o).deviceCap ??= { ...DEFAULT_TELEMETRY_OPTIONS.deviceCap });

const DAY_MS = 86_400_000;
const int = (min: number, max?: number) => ({ min, max });
const share = { min: 0, max: 1, fraction: true };
const ratio = { min: 1, fraction: true };

// biome-ignore format: one flag per line reads as a table
export const SERVER_OPTIONS: readonly OptionSpec[] = [
  // Server
  { flag: 'data-dir', value: '<dir>', group: G.server, help: 'SQLite file, chunk files (without --database-url), keys and bootstrap tokens', defaultValue: '.data', set: (o, v: string) => { o.dataDir = v; } },
  { flag: 'database-url', value: '<url>', env: 'DATABASE_URL', group: G.server, help: 'PostgreSQL connection string: registry, telemetry and chunks in PostgreSQL (required for several processes)', set: (o, v: string) => { o.databaseUrl = v || undefined; } },
  { flag: 'keys-dir', value: '<dir>', group: G.server, help: 'the online key, key set and root (edgeship keygen / keyset); default <data-dir>/keys', set: (o, v: string) => { o.keysDir = v; } },
  { flag: 'create-keys', group: G.server, help: 'create a development trust chain when the keys directory is empty (the default without --database-url)', set: (o, v: boolean) => { o.createKeys = v; } },
  { flag: 'port', value: '<n>', env: 'PORT', group: G.server, help: 'TCP port (0: any free one)', defaultValue: 8787, number: int(0, 65535), set: (o, v: number) => { o.port = v; } },
  { flag: 'host', value: '<address>', env: 'HOST', group: G.server, help: 'address to listen on (0.0.0.0 or :: for every interface)', defaultValue: '127.0.0.1', set: (o, v: string) => { o.host = v; } },
  { flag: 'log-level', value: '<level>', env: 'LOG_LEVEL', group: G.server, help: 'pino log level, JSON lines on stdout', defaultValue: 'info', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], set: (o, v: string) => { o.logLevel = v as 'info'; } },
  { flag: 'manifest-ttl-days', value: '<days>', group: G.server, help: 'lifetime of a signed manifest (devices refuse expired ones); re-signed well before', defaultValue: 7, number: { min: 0.01, fraction: true }, set: (o, v: number) => { o.manifestTtlMs = v * DAY_MS; } },
  { flag: 'no-dashboard', group: G.server, help: 'do not serve the operator dashboard at /dashboard/', set: (o, v: boolean) => { o.dashboard = v; } },
  // HTTP and limits
  { flag: 'trust-proxy', value: '<hops>', group: G.http, help: 'proxy hops in front of the server whose X-Forwarded-For entries count (0: ignore the header)', defaultValue: 0, number: int(0, 16), set: (o, v: number) => { o.trustProxy = v; } },
  { flag: 'metrics-auth', group: G.http, help: 'require a token (any role) on /metrics (env: EDGESHIP_METRICS_AUTH=1)', set: (o, v: boolean) => { o.metricsAuth = v; } },
  { flag: 'public-per-minute', value: '<n>', group: G.http, help: 'requests per client address and minute on the device routes (manifest, chunks)', defaultValue: DEFAULT_RATE_LIMITS.publicPerMinute, number: int(1), set: (o, v: number) => { limits(o).publicPerMinute = v; } },
  { flag: 'admin-per-minute', value: '<n>', group: G.http, help: 'requests per token and minute on the admin API', defaultValue: DEFAULT_RATE_LIMITS.adminPerMinute, number: int(1), set: (o, v: number) => { limits(o).adminPerMinute = v; } },
  { flag: 'auth-failures-per-minute', value: '<n>', group: G.http, help: 'failed authentications per client address and minute before 429', defaultValue: DEFAULT_RATE_LIMITS.authFailuresPerMinute, number: int(1), set: (o, v: number) => { limits(o).authFailuresPerMinute = v; } },
  // Several processes
  { flag: 'rate-limit-store', value: '<store>', group: G.cluster, help: 'where rate-limit counters live: memory (one process), redis or postgres (shared by every process)', defaultValue: 'memory', choices: LIMIT_STORE_KINDS, set: (o, v: LimitStoreKind) => { limitStore(o).kind = v; } },
  { flag: 'redis-url', value: '<url>', env: 'REDIS_URL', group: G.cluster, help: 'Redis for --rate-limit-store redis', set: (o, v: string) => { limitStore(o).redisUrl = v; } },
  { flag: 'rate-limit-prefix', value: '<prefix>', group: G.cluster, help: 'prefix of rate-limit keys, so deployments sharing a store keep apart', defaultValue: 'edgeship', set: (o, v: string) => { limitStore(o).keyPrefix = v; } },
  { flag: 'leader-interval-ms', value: '<ms>', group: G.cluster, help: 'how often a process tries to become the leader (advisory lock) and the leader checks its hold; failover takes at most this', defaultValue: DEFAULT_LEADER_INTERVAL_MS, number: int(50), set: (o, v: number) => { o.leaderIntervalMs = v; } },
  { flag: 'resign-interval-ms', value: '<ms>', group: G.cluster, help: 'how often the leader re-signs manifests past 40% of their lifetime (0: only on request, at half)', defaultValue: DEFAULT_RESIGN_INTERVAL_MS, number: int(0), set: (o, v: number) => { o.resignIntervalMs = v; } },
  // Telemetry
  { flag: 'telemetry-retention-days', value: '<days>', group: G.telemetry, help: 'days batch ids and per-device rows are kept (at least 10: the device outbox)', defaultValue: 30, number: { min: 0, fraction: true }, set: (o, v: number) => { o.telemetryRetentionDays = v; } },
  { flag: 'telemetry-aggregate-retention-days', value: '<days>', group: G.telemetry, help: 'days per-release aggregates are kept (fleet view, canary); at least the above', defaultValue: 90, number: { min: 0, fraction: true }, set: (o, v: number) => { o.telemetryAggregateRetentionDays = v; } },
  { flag: 'telemetry-window-sec', value: '<s>', group: G.telemetry, help: 'aggregation window (server receive time)', defaultValue: DEFAULT_TELEMETRY_OPTIONS.windowSec, number: int(1, 86_400), set: (o, v: number) => { telemetry(o).windowSec = v; } },
  { flag: 'telemetry-per-device-per-minute', value: '<n>', group: G.telemetry, help: 'telemetry requests per device and minute (on the --rate-limit-store)', defaultValue: DEFAULT_TELEMETRY_OPTIONS.perDevicePerMinute, number: int(1), set: (o, v: number) => { telemetry(o).perDevicePerMinute = v; } },
  { flag: 'telemetry-per-address-per-minute', value: '<n>', group: G.telemetry, help: 'telemetry requests per client address and minute (on the --rate-limit-store; many devices share a NAT)', defaultValue: DEFAULT_TELEMETRY_OPTIONS.perAddressPerMinute, number: int(1), set: (o, v: number) => { telemetry(o).perAddressPerMinute = v; } },
  { flag: 'telemetry-device-batches-per-window', value: '<n>', group: G.telemetry, help: 'batches one device may add per window', defaultValue: DEFAULT_TELEMETRY_OPTIONS.deviceCap.batchesPerWindow, number: int(1), set: (o, v: number) => { deviceCap(o).batchesPerWindow = v; } },
  { flag: 'telemetry-device-inferences-per-window', value: '<n>', group: G.telemetry, help: 'inferences one device may add per window', defaultValue: DEFAULT_TELEMETRY_OPTIONS.deviceCap.inferencesPerWindow, number: int(1), set: (o, v: number) => { deviceCap(o).inferencesPerWindow = v; } },
  { flag: 'telemetry-max-group', value: '<n>', group: G.telemetry, help: 'batches committed per transaction (group commit)', defaultValue: DEFAULT_TELEMETRY_OPTIONS.maxGroup, number: int(1), set: (o, v: number) => { telemetry(o).maxGroup = v; } },
  { flag: 'telemetry-max-queued', value: '<n>', group: G.telemetry, help: 'batches waiting before ingest answers 503 busy', defaultValue: DEFAULT_TELEMETRY_OPTIONS.maxQueued, number: int(1), set: (o, v: number) => { telemetry(o).maxQueued = v; } },
  { flag: 'telemetry-drift-window-sec', value: '<s>', group: G.telemetry, help: 'window of the drift gauges on /metrics', defaultValue: DEFAULT_TELEMETRY_OPTIONS.metricsDriftWindowSec, number: int(1), set: (o, v: number) => { telemetry(o).metricsDriftWindowSec = v; } },
  { flag: 'prune-interval-ms', value: '<ms>', group: G.telemetry, help: 'how often the leader deletes telemetry past its retention (0: never)', defaultValue: DEFAULT_TELEMETRY_OPTIONS.pruneIntervalMs, number: int(0), set: (o, v: number) => { telemetry(o).pruneIntervalMs = v; } },
  { flag: 'prune-chunk-rows', value: '<n>', group: G.telemetry, help: 'rows per DELETE when pruning', defaultValue: DEFAULT_TELEMETRY_OPTIONS.pruneChunkRows, number: int(1), set: (o, v: number) => { telemetry(o).pruneChunkRows = v; } },
  // Canary analysis
  { flag: 'no-canary', group: G.canary, help: 'no automatic canary analysis (nothing halts a rollout on its own)', set: (o, v: boolean) => { canary(o).enabled = v; } },
  { flag: 'canary-interval-ms', value: '<ms>', group: G.canary, help: 'every active canary is judged at least this often (on the leader)', defaultValue: 30_000, number: int(50), set: (o, v: number) => { canary(o).intervalMs = v; } },
  { flag: 'canary-throttle-ms', value: '<ms>', group: G.canary, help: 'after telemetry for a model arrives, its canary is judged at most this often', defaultValue: 2_000, number: int(0), set: (o, v: number) => { canary(o).throttleMs = v; } },
  { flag: 'canary-alpha', value: '<p>', group: G.canary, help: 'family-wise rate of halting a healthy canary over all its looks', defaultValue: DEFAULT_CANARY_POLICY.alpha, number: share, set: (o, v: number) => { policy(o).alpha = v; } },
  { flag: 'canary-error-rate-margin', value: '<x>', group: G.canary, help: 'halt when the canary error rate exceeds the control by more than this (absolute)', defaultValue: DEFAULT_CANARY_POLICY.errorRateMargin, number: share, set: (o, v: number) => { policy(o).errorRateMargin = v; } },
  { flag: 'canary-error-rate-z', value: '<z>', group: G.canary, help: 'z of the pooled error-rate test (pooled view only)', defaultValue: DEFAULT_CANARY_POLICY.errorRateZ, number: { min: 0, fraction: true }, set: (o, v: number) => { policy(o).errorRateZ = v; } },
  { flag: 'canary-latency-margin-ratio', value: '<x>', group: G.canary, help: 'halt when the typical install p95 latency exceeds the control by this factor', defaultValue: DEFAULT_CANARY_POLICY.latencyMarginRatio, number: ratio, set: (o, v: number) => { policy(o).latencyMarginRatio = v; } },
  { flag: 'canary-p95-latency-ratio', value: '<x>', group: G.canary, help: 'pooled-view p95 latency factor (pooled view only)', defaultValue: DEFAULT_CANARY_POLICY.p95LatencyRatio, number: ratio, set: (o, v: number) => { policy(o).p95LatencyRatio = v; } },
  { flag: 'canary-psi-threshold', value: '<x>', group: G.canary, help: 'halt when a feature drifts (PSI above this) on the canary but not the control', defaultValue: DEFAULT_CANARY_POLICY.psiThreshold, number: { min: 0, fraction: true }, set: (o, v: number) => { policy(o).psiThreshold = v; } },
  { flag: 'canary-min-inferences', value: '<n>', group: G.canary, help: 'no arm is judged before this many inferences', defaultValue: DEFAULT_CANARY_POLICY.minInferences, number: int(0), set: (o, v: number) => { policy(o).minInferences = v; } },
  { flag: 'canary-min-installs', value: '<n>', group: G.canary, help: 'no verdict before each arm has evidence from this many installs', defaultValue: DEFAULT_CANARY_POLICY.minInstalls, number: int(1), set: (o, v: number) => { policy(o).minInstalls = v; } },
  { flag: 'canary-min-prefixes', value: '<n>', group: G.canary, help: '...and from this many network prefixes (/24, /48)', defaultValue: DEFAULT_CANARY_POLICY.minPrefixes, number: int(1), set: (o, v: number) => { policy(o).minPrefixes = v; } },
  { flag: 'canary-trim-share', value: '<x>', group: G.canary, help: 'share of installs dropped at both ends of each arm (twice the forged share tolerated)', defaultValue: DEFAULT_CANARY_POLICY.trimShare, number: { min: 0, max: 0.49, fraction: true }, set: (o, v: number) => { policy(o).trimShare = v; } },
  { flag: 'canary-weight-clip', value: '<x>', group: G.canary, help: "an install weighs at most this many times the arm's median install", defaultValue: DEFAULT_CANARY_POLICY.weightClip, number: ratio, set: (o, v: number) => { policy(o).weightClip = v; } },
  { flag: 'canary-look-horizon-installs', value: '<n>', group: G.canary, help: 'installs per arm where the always-valid boundary is tightest', defaultValue: DEFAULT_CANARY_POLICY.lookHorizonInstalls, number: int(1), set: (o, v: number) => { policy(o).lookHorizonInstalls = v; } },
  { flag: 'canary-min-segment-installs', value: '<n>', group: G.canary, help: 'a segment is judged on its own from this many installs per arm', defaultValue: DEFAULT_CANARY_POLICY.minSegmentInstalls, number: int(1), set: (o, v: number) => { policy(o).minSegmentInstalls = v; } },
  { flag: 'canary-min-latency-samples', value: '<n>', group: G.canary, help: "an install's latency counts from this many timed inferences", defaultValue: DEFAULT_CANARY_POLICY.minLatencySamples, number: int(1), set: (o, v: number) => { policy(o).minLatencySamples = v; } },
  { flag: 'canary-max-events-per-install', value: '<n>', group: G.canary, help: 'events one install may add to one arm of one rollout', defaultValue: DEFAULT_EVIDENCE_CAPS.maxEventsPerInstall, number: int(1), set: (o, v: number) => { caps(o).maxEventsPerInstall = v; } },
  { flag: 'canary-max-installs-per-prefix', value: '<n>', group: G.canary, help: 'installs of one network prefix that count in one arm', defaultValue: DEFAULT_EVIDENCE_CAPS.maxInstallsPerPrefix, number: int(1), set: (o, v: number) => { caps(o).maxInstallsPerPrefix = v; } },
  { flag: 'shadow-min-compared', value: '<n>', group: G.canary, help: 'no shadow verdict before this many compared inputs', defaultValue: DEFAULT_SHADOW_POLICY.minCompared, number: int(1), set: (o, v: number) => { shadow(o).minCompared = v; } },
  { flag: 'shadow-min-devices', value: '<n>', group: G.canary, help: '...from this many devices', defaultValue: DEFAULT_SHADOW_POLICY.minDevices, number: int(1), set: (o, v: number) => { shadow(o).minDevices = v; } },
  { flag: 'shadow-min-agreement', value: '<x>', group: G.canary, help: 'share of inputs both releases decide alike for a shadow candidate to be ready', defaultValue: DEFAULT_SHADOW_POLICY.minAgreement, number: share, set: (o, v: number) => { shadow(o).minAgreement = v; } },
  { flag: 'shadow-max-latency-ratio', value: '<x>', group: G.canary, help: "the candidate's p95 latency may exceed the active release's by at most this factor", defaultValue: DEFAULT_SHADOW_POLICY.maxLatencyRatio, number: ratio, set: (o, v: number) => { shadow(o).maxLatencyRatio = v; } },
  // Webhook
  { flag: 'webhook-url', value: '<url>', group: G.webhook, help: 'POSTed (JSON) when the analysis halts a rollout, a shadow verdict changes, or a production alert fires or resolves', set: (o, v: string) => { o.webhookUrl = v || undefined; } },
  { flag: 'webhook-attempts', value: '<n>', group: G.webhook, help: 'attempts per event; events are stored first, so retries survive a restart or a new leader', defaultValue: DEFAULT_OUTBOX.attempts, number: int(1, 50), set: (o, v: number) => { webhook(o).attempts = v; } },
  { flag: 'webhook-base-delay-ms', value: '<ms>', group: G.webhook, help: 'first retry delay (doubles each time)', defaultValue: DEFAULT_OUTBOX.baseDelayMs, number: int(0), set: (o, v: number) => { webhook(o).baseDelayMs = v; } },
  { flag: 'webhook-max-delay-ms', value: '<ms>', group: G.webhook, help: 'longest wait between two attempts', defaultValue: DEFAULT_OUTBOX.maxDelayMs, number: int(0), set: (o, v: number) => { webhook(o).maxDelayMs = v; } },
  { flag: 'webhook-secret', value: '<secret>', group: G.webhook, help: 'Standard Webhooks secret: deliveries are signed (webhook-id, webhook-timestamp, webhook-signature headers)', set: (o, v: string) => { if (v) { webhookSigner(v); webhook(o).secret = v; } } },
  { flag: 'webhook-timeout-ms', value: '<ms>', group: G.webhook, help: 'per attempt', defaultValue: 5_000, number: int(1), set: (o, v: number) => { webhook(o).timeoutMs = v; } },
];

/** The environment variable of a spec: its own, else EDGESHIP_ and the flag in upper snake case. */
export function envName(spec: OptionSpec): string {
  return spec.env ?? `EDGESHIP_${spec.flag.replaceAll('-', '_').toUpperCase()}`;
}

/** A commander Option for a spec: the parser, the choices and the env variable (valued flags). */
export function commanderOption(spec: OptionSpec): Option {
  const help = spec.value ? spec.help : `${spec.help} (env: ${envName(spec)}=1)`;
  const option = new Option(`--${spec.flag}${spec.value ? ` ${spec.value}` : ''}`, help).helpGroup(
    spec.group,
  );
  // Switches read their env variable in readSwitchEnv: commander's .env() sets any value true, even 0.
  if (!spec.value) return option;
  option.env(envName(spec));
  if (spec.choices) option.choices(spec.choices);
  if (spec.defaultValue !== undefined) option.default(spec.defaultValue);
  const bounds = spec.number;
  if (bounds) option.argParser((text: string) => parseBounded(text, bounds));
  return option;
}

function parseBounded(text: string, bounds: NonNullable<OptionSpec['number']>): number {
  const n = Number(text);
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  if (
    text.trim() === '' ||
    !Number.isFinite(n) ||
    n < bounds.min ||
    n > max ||
    (!bounds.fraction && !Number.isInteger(n))
  ) {
    const kind = bounds.fraction ? 'a number' : 'a whole number';
    throw new InvalidArgumentError(
      `expected ${kind} from ${bounds.min}${bounds.max === undefined ? ' up' : ` to ${bounds.max}`}.`,
    );
  }
  return n;
}

/** A switch set in the environment (1 or true; 0, false or empty leave it off). */
export function readSwitchEnv(spec: OptionSpec, env: NodeJS.ProcessEnv): boolean | undefined {
  const text = env[envName(spec)];
  if (text === undefined) return undefined;
  return text === '1' || text.toLowerCase() === 'true';
}

/** The attribute commander stores a flag under (`--no-canary` → `canary`, `--data-dir` → `dataDir`). */
export function attributeOf(spec: OptionSpec): string {
  return spec.flag.replace(/^no-/, '').replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * Which flags set each option of startServer, or why none does: adding a ServerOptions field
 * without a flag fails to compile here (and options.test.ts checks every named flag exists).
 */
export const OPTION_COVERAGE: Record<keyof ServerOptions, readonly string[] | { programmatic: string }> = {
  dataDir: ['data-dir'],
  databaseUrl: ['database-url'],
  port: ['port'],
  host: ['host'],
  keysDir: ['keys-dir'],
  createKeys: ['create-keys'],
  manifestTtlMs: ['manifest-ttl-days'],
  logLevel: ['log-level'],
  logStream: { programmatic: 'a stream object; the bin logs to stdout' },
  logger: { programmatic: "a host's logger object" },
  rateLimits: ['public-per-minute', 'admin-per-minute', 'auth-failures-per-minute'],
  rateLimitStore: ['rate-limit-store', 'redis-url', 'rate-limit-prefix'],
  leaderIntervalMs: ['leader-interval-ms'],
  resignIntervalMs: ['resign-interval-ms'],
  trustProxy: ['trust-proxy'],
  metricsAuth: ['metrics-auth'],
  webhookUrl: ['webhook-url'],
  telemetry: [
    'telemetry-window-sec',
    'telemetry-per-device-per-minute',
    'telemetry-per-address-per-minute',
    'telemetry-device-batches-per-window',
    'telemetry-device-inferences-per-window',
    'telemetry-max-group',
    'telemetry-max-queued',
    'telemetry-drift-window-sec',
    'prune-interval-ms',
    'prune-chunk-rows',
  ],
  telemetryRetentionDays: ['telemetry-retention-days'],
  telemetryAggregateRetentionDays: ['telemetry-aggregate-retention-days'],
  telemetryClock: { programmatic: 'a clock function, for tests' },
  canary: [
    'no-canary',
    'canary-interval-ms',
    'canary-throttle-ms',
    ...Object.keys(DEFAULT_CANARY_POLICY).map((k) => `canary-${kebab(k)}`),
    ...Object.keys(DEFAULT_SHADOW_POLICY).map((k) => `shadow-${kebab(k)}`),
    ...Object.keys(DEFAULT_EVIDENCE_CAPS).map((k) => `canary-${kebab(k)}`),
    'webhook-attempts',
    'webhook-base-delay-ms',
    'webhook-max-delay-ms',
    'webhook-timeout-ms',
    'webhook-secret',
  ],
  mount: { programmatic: 'routes of the host; the bin mounts the dashboard (--no-dashboard)' },
};

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
}
