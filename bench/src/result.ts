// The shape every benchmark returns and the runner writes to bench/results/<name>.json.

export interface Machine {
  cpuModel: string;
  cores: number;
  totalMemGiB: number;
  node: string;
  platform: string;
  /** 1-minute load average when the benchmark started: the machine is shared. */
  loadAvg1: number;
  browser?: string;
}

/** One line of the report: a measured figure, and where it applies its baseline and their ratio. */
export interface Row {
  metric: string;
  value: number;
  unit: string;
  baseline?: { label: string; value: number };
  /** value / baseline.value (median over runs). */
  ratio?: number;
  note?: string;
}

export interface Goal {
  goal: string;
  /** null: not measured (pending). */
  met: boolean | null;
  detail: string;
}

export interface BenchResult {
  name: string;
  title: string;
  startedAt: string;
  durationMs: number;
  quick: boolean;
  machine: Machine;
  /** How many repetitions each median is taken over, and other settings. */
  settings: Record<string, unknown>;
  rows: Row[];
  goals: Goal[];
  /** Set when the benchmark could not run (a missing part): the reason. */
  pending?: string;
  notes?: string[];
  raw?: unknown;
}

export interface BenchContext {
  quick: boolean;
  /** Soak duration override in seconds (--soak-seconds). */
  soakSeconds?: number;
  /** real-sized: model sizes in MB (--sizes). */
  sizes?: number[];
  /** real-sized: the reload-at-half-way model's size in MB (--reload-mb; 0 skips it). */
  reloadMb?: number;
  /** real-sized: repetitions per size (--reps; default 5, --quick 3). */
  reps?: number;
  /** fleet: fleet sizes to simulate (--fleet-devices 10000; default 1,000 / 10,000 / 100,000). */
  fleetDevices?: number[];
  /** update-server: the parts to run (--parts manifest,chunk,telemetry; default all). */
  parts?: string[];
  log(message: string): void;
}

export type Benchmark = (ctx: BenchContext) => Promise<
  Omit<BenchResult, 'startedAt' | 'durationMs' | 'machine' | 'quick'> & {
    browser?: string;
  }
>;
