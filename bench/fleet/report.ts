import type { FleetSummary } from '@edgeship/update-server/admin-client';
import type { Device, Forgery } from './device.ts';
import type { Scenario } from './scenario.ts';

/** What a fleet run reports: per scenario, and over all batches. */

export interface ScenarioReport {
  scenario: string;
  model: string;
  candidate: string;
  /** How the forging devices lied about this model (null: none did). */
  forged: Forgery | null;
  devices: number;
  seed: number;
  stages: number[];
  /** Who widened the rollout (ScenarioOptions.staging) and every share it was at, fill steps included. */
  staging: 'ticks' | 'schedule';
  shares: number[];
  outcome: 'halted' | 'promoted';
  haltedAtShareBps: number | null;
  haltReason: string | null;
  webhookReceived: boolean;
  /** Devices that activated the candidate before the halt (or ever, when promoted), over the fleet. */
  shareOfFleetRanCandidate: number;
  timeToHalt: { realMs: number; simulatedMinutes: number } | null;
  /** Simulated minutes after the halt until no device ran the candidate any more. */
  allBackOnControlAfterMinutes: number | null;
  /** Device-hours on the candidate as a share of the fleet's device-hours while the scenario ran. */
  exposureShareOfDeviceHours: number;
  /** From the first candidate telemetry acknowledged to the halt, in mean check intervals. */
  detectionDelayCheckIntervals: number | null;
  /** Simulated minutes, and mean check intervals, after the halt until 99% of the devices then on it had left. */
  ninetyNineOffAfter: { minutes: number; checkIntervals: number } | null;
  /** This model's inferences and errors: acknowledged by the simulator's count, and as the server counted them. */
  events: { acknowledged: number; server: number; duplicatesCounted: number };
  p95LatencyMs: Record<string, number | null>;
  ticks: number;
}

export interface BatchCounts {
  generated: number;
  acknowledged: number;
  resent: number;
  answeredDuplicate: number;
  resendRefused: number;
  retried: number;
  unexpectedDuplicate: number;
}

export interface FleetReport {
  devices: number;
  /** Devices that forged telemetry where a scenario asked them to, and the networks all devices used. */
  forgedDevices: number;
  networks: number;
  seed: number;
  tickMinutes: number;
  ticks: number;
  wallMs: number;
  batches: {
    generated: number;
    acknowledged: number;
    lost: number;
    /** Acknowledged batches sent again (a lost response) and how many the server answered as duplicates. */
    resent: number;
    answeredDuplicate: number;
    /** Resends still refused (429 or network) after a few tries: neither counted nor answered as duplicates. */
    resendRefused: number;
    /** Refused with a retryable status (429, 5xx, network) and kept for the next tick. */
    retriedAfterRefusal: number;
    /** Events the server counted beyond what was acknowledged, over all models (must be 0). */
    duplicatesCounted: number;
  };
  scenarios: ScenarioReport[];
}

export function scenarioReport(
  sc: Scenario,
  devices: Device[],
  fleet: FleetSummary,
  webhookReceived: boolean,
  tickMinutes: number,
  meanCheckMinutes: number,
): ScenarioReport {
  const serverEvents = fleet.versions.reduce((n, v) => n + v.inferences + v.errors, 0);
  return {
    scenario: sc.s.name,
    model: sc.s.model,
    candidate: sc.s.candidate.name,
    forged: sc.s.forged,
    devices: devices.length,
    seed: sc.s.seed,
    stages: sc.s.stages,
    staging: sc.s.staging,
    shares: sc.shares,
    outcome: sc.outcome!,
    haltedAtShareBps: sc.halt?.shareBps ?? null,
    haltReason: sc.halt?.reason ?? null,
    webhookReceived,
    shareOfFleetRanCandidate: devices.filter((d) => d.ranCandidate.has(sc.s.model)).length / devices.length,
    timeToHalt:
      sc.halt && sc.firstBad
        ? {
            realMs: Math.max(0, sc.halt.atMs - sc.firstBad.atMs),
            simulatedMinutes: (sc.halt.tick - sc.firstBad.tick) * tickMinutes,
          }
        : null,
    allBackOnControlAfterMinutes:
      sc.halt && sc.allBackAt !== null ? sc.allBackAt - sc.halt.tick * tickMinutes : null,
    exposureShareOfDeviceHours:
      sc.fleetDeviceMinutes > 0 ? sc.candidateDeviceMinutes / sc.fleetDeviceMinutes : 0,
    detectionDelayCheckIntervals:
      sc.halt && sc.firstBad ? ((sc.halt.tick - sc.firstBad.tick) * tickMinutes) / meanCheckMinutes : null,
    ninetyNineOffAfter:
      sc.ninetyNineOffAfterMinutes !== null
        ? {
            minutes: sc.ninetyNineOffAfterMinutes,
            checkIntervals: sc.ninetyNineOffAfterMinutes / meanCheckMinutes,
          }
        : null,
    events: {
      acknowledged: sc.ackedEvents,
      server: serverEvents,
      duplicatesCounted: serverEvents - sc.ackedEvents,
    },
    p95LatencyMs: Object.fromEntries(fleet.versions.map((v) => [v.version, v.latencyMs.p95])),
    ticks: sc.doneTick,
  };
}

export function fleetReport(input: {
  devices: Device[];
  seed: number;
  tickMinutes: number;
  ticks: number;
  wallMs: number;
  counts: BatchCounts;
  scenarios: ScenarioReport[];
}): FleetReport {
  const { devices, counts, scenarios } = input;
  return {
    devices: devices.length,
    forgedDevices: devices.filter((d) => d.forger).length,
    networks: new Set(devices.map((d) => d.from.split('.').slice(0, 3).join('.'))).size,
    seed: input.seed,
    tickMinutes: input.tickMinutes,
    ticks: input.ticks,
    wallMs: input.wallMs,
    batches: {
      generated: counts.generated,
      acknowledged: counts.acknowledged,
      lost: counts.generated - counts.acknowledged,
      resent: counts.resent,
      answeredDuplicate: counts.answeredDuplicate,
      resendRefused: counts.resendRefused,
      retriedAfterRefusal: counts.retried,
      duplicatesCounted:
        scenarios.reduce((n, r) => n + r.events.duplicatesCounted, 0) + counts.unexpectedDuplicate,
    },
    scenarios,
  };
}
