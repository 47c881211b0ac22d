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
  const s = record.segment ?? {};
  return {
    browser: s.browser ?? 'unknown',
    browserVersion: s.browser && s.browserMajor !== undefined ? `${s.browser}-${s.browserMajor}` : 'unknown',
    os: s.os ?? 'unknown',
    backend: record.backend,
    deviceClass: s.deviceClass ?? 'unknown',
    // The minor version is enough to tell runtimes apart; patch releases would only split counts.
    runtime: runtimeVersion.split('.').slice(0, 2).join('.'),
  };
}
