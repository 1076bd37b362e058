import type { BenchStack, BenchStorage } from './stack.js';
import type { Service } from './processes.js';

/** Settings of one `npm run bench`, and what the harness started for the scenarios. */
export interface BenchSettings {
  smoke: boolean;
  /** Connections (requests in flight) of every HTTP load run. */
  connections: number;
  /** Length of one measured run, in seconds. */
  seconds: number;
  warmupSeconds: number;
  /** Measured runs per target; targets compared with each other take turns (A B B A ...). */
  rounds: number;
  subscriptionCounts: number[];
  statusChangesPerSecond: number;
  statusChangeSeconds: number;
  workerJobs: number;
  /** Extra node flags of the router process, e.g. --cpu-prof. */
  routerNodeArgs: string[];
}

export interface BenchContext {
  settings: BenchSettings;
  storage: BenchStorage;
  stack: BenchStack;
  router: Service;
  routerUrl: string;
  /** Sent on every request to the router (the admin's token when the graph has login). */
  authHeaders: Record<string, string>;
  /** Every seeded order; requests go round them in turn. */
  orderIds: string[];
  workDir: string;
}

/** What a scenario writes to bench/results/<name>.json. */
export interface ScenarioResult {
  scenario: string;
  title: string;
  /** Goals of the issue this scenario checks, with the measured value. */
  targets: { goal: string; measured: string; met: boolean }[];
  [key: string]: unknown;
}
