import { SUBGRAPHS, type FaultStack, type ServiceName } from './fault-stack.js';
import { sleep } from './service-process.js';

/**
 * One fault, injected while the load runs. `run` returns once the stack is whole again (restarted, resumed), with
 * what it observed of the fault taking effect, so a fault that did not bite is seen in the report.
 */
export interface Fault {
  name: string;
  run(stack: FaultStack): Promise<string>;
}

/** How long a killed process or server stays down before it is started again. */
const DOWN_MS = 2_000;

function killAndRestart(name: ServiceName): Fault {
  return {
    name: `kill -9 ${name}`,
    async run(stack) {
      const service = stack.service(name);
      const pid = service.pid;
      await service.kill();
      await sleep(DOWN_MS);
      const started = Date.now();
      await service.start();
      return `pid ${pid} killed; down ${DOWN_MS / 1000}s, then ${((Date.now() - started) / 1000).toFixed(1)}s to start again (pid ${service.pid})`;
    },
  };
}

function describe(counts: Record<string, number>): string {
  return Object.entries(counts).map(([key, n]) => `${key} ${n}`).join(', ');
}

export const FAULTS: readonly Fault[] = [
  // No fault: the same load and checks, so a failure here is the harness's or the product's under plain load.
  { name: 'none (baseline)', run: async () => (await sleep(3_000), 'nothing done') },
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
        const states = frozen.map((service) => `${service.name} ${service.state()}`).join(', ');
        const held = await stack.queuedJobs();
        await stack.redis.kill();
        await sleep(1_000);
        await stack.redis.start({ empty: true });
        const after = await stack.queuedJobs();
        return `paused (process states: ${states}); Redis killed holding jobs: ${describe(held)}; restarted empty: ${describe(after)}`;
      } finally {
        for (const service of frozen) service.resume();
      }
    },
  },
  {
    name: 'PostgreSQL backends terminated',
    async run(stack) {
      const terminated: number[] = [];
      for (let round = 0; round < 3; round++) {
        let n = 0;
        for (const name of SUBGRAPHS) n += await stack.postgres.terminateBackends(`faults_${name}`);
        terminated.push(n);
        await sleep(1_000);
      }
      return `backends terminated in 3 rounds 1s apart: ${terminated.join(', ')}`;
    },
  },
  {
    name: 'PostgreSQL restarted',
    async run(stack) {
      await stack.postgres.kill();
      await sleep(3_000);
      const started = Date.now();
      await stack.postgres.start();
      return `immediate shutdown; down 3s, then ${((Date.now() - started) / 1000).toFixed(1)}s to start`;
    },
  },
];
