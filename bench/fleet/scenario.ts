import { mulberry32 } from '@edgeship/protocol';
import type { Device, Forgery, ModelDraw, Profile } from './device.ts';

/** One scenario: a model with its control and candidate, staged through a rollout. */

export const APP = 'fleet-app';
export const CHANNEL = 'stable';
export const CONTROL = '1.0.0';
export const CANDIDATE = '1.1.0';

export interface ScenarioOptions {
  name: string;
  model: string;
  seed: number;
  candidate: Profile;
  /** Rollout stages in basis points. */
  stages?: number[];
  ticksPerStage?: number;
  /** Ticks to keep going after a halt (devices move back to the control). */
  ticksAfterHalt?: number;
  /** The forging devices (FleetOptions.forgedShare) lie about this model this way. */
  forged?: Forgery | null;
  /**
   * Who widens the rollout: `ticks`, the simulator (`setShare` every `ticksPerStage` ticks, whatever
   * the verdict); `schedule`, the server's rollout schedule (canary/schedule.ts) on its verdicts,
   * with `schedule` below: the product's staging, segment hold included.
   */
  staging?: 'ticks' | 'schedule';
  schedule?: ScheduleSettings;
  /**
   * A scenario whose rollout has not moved (share, halt, promotion) for this many ticks fails the
   * run (a schedule that never widens), once that has also lasted longer than the schedule's
   * segment hold may wait in real time: the hold's wait is real minutes while a tick is compressed
   * time, so at 1,000 devices (about half a second a tick) one 3-minute wait is some 360 ticks.
   */
  maxTicks?: number;
}

/** The rollout schedule a `schedule`-staged scenario attaches (POST /v1/admin/rollouts/{id}/schedule). */
export interface ScheduleSettings {
  minStageMinutes: number;
  minSamples: number;
  segmentMinShare?: number;
  segmentMaxWaitMinutes?: number;
}

export interface Halt {
  atMs: number;
  tick: number;
  shareBps: number;
  reason: string | null;
}

export class Scenario implements ModelDraw {
  readonly s: Required<ScenarioOptions>;
  readonly random: () => number;
  readonly candidateVersion = CANDIDATE;
  rolloutId = '';
  stage = 0;
  ticksInStage = 0;
  outcome: 'halted' | 'promoted' | null = null;
  halt: Halt | null = null;
  firstBad: { atMs: number; tick: number } | null = null;
  allBackAt: number | null = null;
  ackedEvents = 0;
  doneTick = 0;
  /** Device-minutes spent on the candidate, and by the whole fleet, while the scenario ran. */
  candidateDeviceMinutes = 0;
  fleetDeviceMinutes = 0;
  /** Devices on the candidate at the halt, and simulated minutes after it until 99% of them left. */
  onCandidateAtHalt: number | null = null;
  ninetyNineOffAfterMinutes: number | null = null;

  /** Counts one tick's device-minutes and, after a halt, how many devices still run the candidate. */
  account(devices: Device[], tickMinutes: number, simNow: number): void {
    if (this.outcome !== null) return;
    const onCandidate = devices.filter((d) => d.active.get(this.s.model) === CANDIDATE).length;
    this.candidateDeviceMinutes += onCandidate * tickMinutes;
    this.fleetDeviceMinutes += devices.length * tickMinutes;
    if (!this.halt || this.ninetyNineOffAfterMinutes !== null) return;
    this.onCandidateAtHalt ??= onCandidate;
    if (onCandidate <= this.onCandidateAtHalt * 0.01)
      this.ninetyNineOffAfterMinutes = simNow - this.halt.tick * tickMinutes;
  }

  constructor(input: ScenarioOptions) {
    this.s = {
      stages: [100, 1000, 5000, 10000],
      ticksPerStage: 4,
      ticksAfterHalt: 16,
      forged: null,
      staging: 'ticks',
      schedule: { minStageMinutes: 0, minSamples: 0 },
      maxTicks: 400,
      ...input,
    };
    this.share = this.s.stages[0]!;
    this.random = mulberry32(this.s.seed);
  }

  get model(): string {
    return this.s.model;
  }
  get candidate(): Profile {
    return this.s.candidate;
  }
  get forged(): Forgery | null {
    return this.s.forged;
  }
  /** The rollout's share: the stage's, or (schedule staging) what the server last said. */
  private share: number;
  /** Every share the rollout was at, in order (a schedule's fill steps included). */
  readonly shares: number[] = [];
  /** The share at the last step, and when it last changed: tick and real time (step's stall check). */
  private moved = { shareBps: -1, tick: 0, ms: Date.now() };
  get shareBps(): number {
    return this.s.staging === 'schedule' ? this.share : this.s.stages[this.stage]!;
  }

  /** The server's rollout after a tick: its share while it runs (schedule staging widens it there). */
  observe(rollout: { state: string; shareBps: number }): void {
    if (rollout.state === 'active') this.share = rollout.shareBps;
    if (this.shares.at(-1) !== this.shareBps) this.shares.push(this.shareBps);
  }

  /**
   * Real ms a schedule may keep a share on its own: a stage's minimum time, then the segment hold's
   * wait (the server's default, 3 stage times, when not given), and a minute to spare.
   */
  private get holdMs(): number {
    if (this.s.staging !== 'schedule') return 0;
    const { minStageMinutes, segmentMaxWaitMinutes } = this.s.schedule;
    return (minStageMinutes + (segmentMaxWaitMinutes ?? 3 * minStageMinutes) + 1) * 60_000;
  }

  /** Records the halt the server reports, once. */
  noteHalt(rollout: { state: string; reason: string | null; updatedAt: string }, tick: number): boolean {
    if (this.halt || rollout.state !== 'halted') return false;
    this.halt = {
      atMs: Date.parse(rollout.updatedAt),
      tick,
      shareBps: this.shareBps,
      reason: rollout.reason,
    };
    return true;
  }

  /**
   * One tick's decision after the server's state is known: keep going, move to the next stage,
   * ask for promotion (the last stage has run its ticks), or finish (halted and devices back).
   */
  step(
    tick: number,
    simNow: number,
    devices: Device[],
    rollout: { state: string },
  ): 'continue' | 'next-stage' | 'promote' {
    if (this.shareBps !== this.moved.shareBps) this.moved = { shareBps: this.shareBps, tick, ms: Date.now() };
    const still = tick - this.moved.tick;
    if (still > this.s.maxTicks && Date.now() - this.moved.ms > this.holdMs)
      throw new Error(
        `${this.s.name}: rollout ${rollout.state} at ${this.shareBps} bps, unchanged for ${still} ticks ` +
          `and ${Math.round((Date.now() - this.moved.ms) / 1000)} s`,
      );
    if (this.halt) {
      if (this.allBackAt === null && devices.every((d) => d.active.get(this.s.model) !== CANDIDATE))
        this.allBackAt = simNow;
      if (tick - this.halt.tick >= this.s.ticksAfterHalt || this.allBackAt !== null)
        this.finish('halted', tick);
      return 'continue';
    }
    if (this.s.staging === 'schedule') {
      // The server's schedule widens and promotes; the simulator only watches.
      if (rollout.state === 'promoted') this.finish('promoted', tick);
      return 'continue';
    }
    this.ticksInStage += 1;
    if (this.ticksInStage < this.s.ticksPerStage) return 'continue';
    if (this.stage < this.s.stages.length - 1) {
      this.stage += 1;
      this.ticksInStage = 0;
      return 'next-stage';
    }
    return 'promote';
  }

  finish(outcome: 'halted' | 'promoted', tick: number): void {
    this.outcome = outcome;
    this.doneTick = tick;
  }
}
