import { SUBGRAPHS, type FaultStack, type ServiceName } from './fault-stack.js';
import { sleep } from './service-process.js';

/** One fault, injected while the load runs; `run` returns once the stack is whole again (restarted, resumed). */
export interface Fault {
  name: string;
  /** The process the fault kills on purpose, whose exit is not a failure. */
  kills?: ServiceName;
  run(stack: FaultStack): Promise<void>;
}

/** How long a killed process stays down before it is started again. */
const DOWN_MS = 2_000;

function killAndRestart(name: ServiceName): Fault {
  return {
    name: `kill -9 ${name}`,
    kills: name,
    async run(stack) {
      const service = stack.service(name);
      await service.kill();
      await sleep(DOWN_MS);
      await service.start();
    },
  };
}

export const FAULTS: readonly Fault[] = [
  // No fault: the same load and checks, so a failure here is the harness's or the product's under plain load.
  { name: 'none (baseline)', run: () => sleep(3_000) },
  killAndRestart('orders'),
  killAndRestart('inventory'),
  killAndRestart('notify'),
  killAndRestart('router'),
  {
    name: 'Redis restarted empty',
    async run(stack) {
      // The consumers freeze, so reservation and notification jobs pile up in Redis; then Redis loses them all.
      const frozen = [stack.service('inventory'), stack.service('notify')];
      for (const service of frozen) service.pause();
      try {
        await sleep(4_000);
        await stack.redis.kill();
        await sleep(1_000);
        await stack.redis.start({ empty: true });
      } finally {
        for (const service of frozen) service.resume();
      }
    },
  },
  {
    name: 'PostgreSQL backends terminated',
    async run(stack) {
      for (let round = 0; round < 3; round++) {
        for (const name of SUBGRAPHS) await stack.postgres.terminateBackends(`faults_${name}`);
        await sleep(1_000);
      }
    },
  },
  {
    name: 'PostgreSQL restarted',
    async run(stack) {
      await stack.postgres.kill();
      await sleep(3_000);
      await stack.postgres.start();
    },
  },
];
