import * as z from 'zod/mini';

/**
 * Coarse, non-identifying device segments a telemetry record may carry, so that the server can
 * judge a release per browser, OS, backend and device class: browser-ML regressions are usually
 * specific to one (a WebGPU driver, one browser's WASM). Every field is a small enum or a major
 * version, so a segment says which kind of device, never which device.
 */
export const BROWSER_FAMILIES = ['chrome', 'edge', 'firefox', 'safari', 'samsung', 'opera', 'other'] as const;
export const OS_FAMILIES = ['windows', 'macos', 'linux', 'chromeos', 'android', 'ios', 'other'] as const;
/**
 * From navigator.hardwareConcurrency and navigator.deviceMemory (the latter is itself coarse:
 * 0.25 to 8 GiB in powers of two). See deviceClassOf.
 */
export const DEVICE_CLASSES = ['low', 'mid', 'high'] as const;

export type BrowserFamily = (typeof BROWSER_FAMILIES)[number];
export type OsFamily = (typeof OS_FAMILIES)[number];
export type DeviceClass = (typeof DEVICE_CLASSES)[number];

export const DeviceSegmentSchema = z.strictObject({
  browser: z.optional(z.enum(BROWSER_FAMILIES)),
  browserMajor: z.optional(z.int().check(z.minimum(0), z.maximum(999))),
  os: z.optional(z.enum(OS_FAMILIES)),
  deviceClass: z.optional(z.enum(DEVICE_CLASSES)),
});
export type DeviceSegment = z.infer<typeof DeviceSegmentSchema>;

/**
 * A device class from what the browser tells every page: `low` below 4 cores or 4 GiB, `high`
 * from 8 cores and 8 GiB, `mid` between. Unknown values (Safari and Firefox hide deviceMemory)
 * are judged on the other alone.
 */
export function deviceClassOf(
  hardwareConcurrency?: number,
  deviceMemoryGiB?: number,
): DeviceClass | undefined {
  const cores = Number.isFinite(hardwareConcurrency) ? hardwareConcurrency! : undefined;
  const memory = Number.isFinite(deviceMemoryGiB) ? deviceMemoryGiB! : undefined;
  if (cores === undefined && memory === undefined) return undefined;
  if ((cores !== undefined && cores < 4) || (memory !== undefined && memory < 4)) return 'low';
  if ((cores ?? 8) >= 8 && (memory ?? 8) >= 8) return 'high';
  return 'mid';
}

/** The dimensions the server splits a fleet by, and how each is read from a record. */
export const SEGMENT_DIMENSIONS = [
  'browser',
  'browserVersion',
  'os',
  'backend',
  'deviceClass',
  'runtime',
] as const;
export type SegmentDimension = (typeof SEGMENT_DIMENSIONS)[number];
/** One install's value on each dimension ('unknown' where the record says nothing). */
export type SegmentValues = Record<SegmentDimension, string>;

export function segmentValues(
  record: { backend: string; segment?: DeviceSegment },
  runtimeVersion: string,
): SegmentValues {
  return { ...deviceSegmentValues(record.segment, runtimeVersion), backend: record.backend };
}

/**
 * What a device knows of its own segment values before it has opened a model: everything but
 * the backend, which it knows once an engine runs (and passes then).
 */
export function deviceSegmentValues(
  segment: DeviceSegment | undefined,
  runtimeVersion: string,
  backend?: string,
): Partial<SegmentValues> & Omit<SegmentValues, 'backend'> {
  const s = segment ?? {};
  return {
    browser: s.browser ?? 'unknown',
    browserVersion: s.browser && s.browserMajor !== undefined ? `${s.browser}-${s.browserMajor}` : 'unknown',
    os: s.os ?? 'unknown',
    ...(backend !== undefined && { backend }),
    deviceClass: s.deviceClass ?? 'unknown',
    // The minor version is enough to tell runtimes apart; patch releases would only split counts.
    runtime: runtimeVersion.split('.').slice(0, 2).join('.'),
  };
}

/** What a page or worker can read of itself (navigator), all optional. */
export interface NavigatorLike {
  userAgent?: string;
  hardwareConcurrency?: number;
  /** Chromium only, GiB. */
  deviceMemory?: number;
}

/**
 * A device's coarse segment from its user agent and hardware hints: browser family and major
 * version, OS family, device class. Nothing finer is kept (no minor versions, no models).
 */
export function deviceSegmentOf(nav: NavigatorLike | undefined): DeviceSegment {
  const ua = nav?.userAgent ?? '';
  const segment: DeviceSegment = {};
  const browser = browserOf(ua);
  if (browser) {
    segment.browser = browser.family;
    if (browser.major !== undefined && browser.major <= 999) segment.browserMajor = browser.major;
  }
  if (ua) segment.os = osOf(ua);
  const deviceClass = deviceClassOf(nav?.hardwareConcurrency, nav?.deviceMemory);
  if (deviceClass) segment.deviceClass = deviceClass;
  return segment;
}

const BROWSER_PATTERNS: ReadonlyArray<[BrowserFamily, RegExp]> = [
  // Order matters: Edge, Opera and Samsung say "Chrome" too, Chrome says "Safari".
  ['edge', /\bEdg(?:e|A|iOS)?\/(\d+)/],
  ['opera', /\b(?:OPR|OPT)\/(\d+)/],
  ['samsung', /\bSamsungBrowser\/(\d+)/],
  ['firefox', /\b(?:Firefox|FxiOS)\/(\d+)/],
  ['chrome', /\b(?:HeadlessChrome|Chrome|CriOS|Chromium)\/(\d+)/],
  ['safari', /\bVersion\/(\d+)[.\d]* (?:Mobile\/\S+ )?Safari\//],
];

function browserOf(ua: string): { family: BrowserFamily; major?: number } | undefined {
  if (!ua) return undefined;
  for (const [family, pattern] of BROWSER_PATTERNS) {
    const m = pattern.exec(ua);
    if (m) return { family, major: Number(m[1]) };
  }
  return { family: 'other' };
}

function osOf(ua: string): OsFamily {
  if (/Windows/.test(ua)) return 'windows';
  if (/CrOS/.test(ua)) return 'chromeos';
  if (/Android/.test(ua)) return 'android';
  if (/iPhone|iPad|iPod/.test(ua)) return 'ios';
  if (/Mac OS X|Macintosh/.test(ua)) return 'macos';
  if (/Linux|X11/.test(ua)) return 'linux';
  return 'other';
}

/**
 * A segment a rollout leaves out (by the channel's policy, when the canary regressed on that
 * segment alone): a dimension and the value a device computes for itself. 'other' and
 * 'unknown' are never excluded: a device cannot tell it was merged into 'other', and 'unknown'
 * says nothing about the device.
 */
export const ExcludedSegmentSchema = z.strictObject({
  dimension: z.enum(SEGMENT_DIMENSIONS),
  value: z
    .string()
    .check(z.regex(/^(?!(?:other|unknown)$)[a-z0-9][a-z0-9.-]{0,31}$/, 'a lower-case segment value')),
});
export type ExcludedSegment = z.infer<typeof ExcludedSegmentSchema>;
/** A rollout leaves out at most this many segments; past that the server halts it instead. */
export const MAX_EXCLUDED_SEGMENTS = 8;

/** The excluded segment a device with these values falls in, if any. */
export function excludedSegmentOf(
  excluded: readonly ExcludedSegment[] | undefined,
  values: Partial<SegmentValues> | undefined,
): ExcludedSegment | undefined {
  if (!excluded || !values) return undefined;
  return excluded.find((e) => values[e.dimension] === e.value);
}
