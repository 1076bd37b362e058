import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A service process the bench started; only these are ever signalled. */
export interface Service {
  name: string;
  child: ChildProcess;
  pid: number;
  port: number;
  /** http://127.0.0.1:<port> */
  origin: string;
  output: string[];
  stop(): Promise<void>;
}

const started = new Set<Service>();

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

/**
 * Starts `node --import tsx <entry>` on a free loopback port and waits for /health.
 * The service is its own process, so its CPU time and memory can be read alone.
 */
export async function startService(
  name: string,
  entry: string,
  env: NodeJS.ProcessEnv,
  options: { nodeArgs?: string[]; timeoutMs?: number; healthPath?: string; ready?: (origin: string) => Promise<boolean> } = {},
): Promise<Service> {
  const port = await freePort();
  const output: string[] = [];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', entry], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Keep the tail only: a chatty service must not grow the bench's memory.
  const keep = (d: Buffer) => {
    output.push(d.toString());
    if (output.length > 200) output.splice(0, output.length - 200);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const origin = `http://127.0.0.1:${port}`;
  const service: Service = {
    name,
    child,
    pid: child.pid!,
    port,
    origin,
    output,
    async stop() {
      started.delete(service);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  started.add(service);
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}): ${output.join('').slice(-4000)}`);
    const ok = options.ready
      ? await options.ready(origin)
      : await fetch(`${origin}${options.healthPath ?? '/health'}`).then((r) => r.ok, () => false);
    if (ok) return service;
    await new Promise((r) => setTimeout(r, 200));
  }
  await service.stop();
  throw new Error(`${name} did not answer ${options.healthPath ?? '/health'} in time: ${output.join('').slice(-4000)}`);
}

/** Stops every service still running, in parallel. */
export async function stopAllServices(): Promise<void> {
  await Promise.all([...started].map((s) => s.stop()));
}

/** Last resort when the bench itself dies: no service outlives it. */
export function killAllServicesNow(): void {
  for (const s of started) if (s.child.exitCode === null) s.child.kill('SIGKILL');
}

const CLOCK_TICKS_PER_SECOND = 100;

/** User and system CPU time of a process (all its threads), in milliseconds, from /proc. */
export function cpuTimes(pid: number): { user: number; system: number } {
  return cpuTimesOfStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** User and system CPU time (ms) in the text of a `/proc/<pid>/stat` file. */
function cpuTimesOfStat(stat: string): { user: number; system: number } {
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(fields[11]) * 1000) / CLOCK_TICKS_PER_SECOND, system: (Number(fields[12]) * 1000) / CLOCK_TICKS_PER_SECOND };
}

/** User plus system CPU time of a process, in milliseconds. */
export function cpuTimeMs(pid: number): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** Resident memory of a process, in bytes, from /proc. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  return Number(kb) * 1024;
}

/**
 * CPU time (ms) of every process with this command name (all PostgreSQL backends, the Redis server), by pid: they
 * share the machine's cores with the services, so their share of a change is reported beside the services' own.
 */
function cpuMsByPid(command: string): Map<string, number> {
  const byPid = new Map<string, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (name !== command) continue;
      const { user, system } = cpuTimesOfStat(stat);
      byPid.set(entry, user + system);
    } catch {
      // The process ended while we looked.
    }
  }
  return byPid;
}

/**
 * A reader of the CPU time those processes spend from now on: processes started meanwhile count in full; one that
 * exits before the second reading is left out (its time can no longer be read), so the figure is a lower bound.
 */
export function cpuMsOfCommandSince(command: string): () => number {
  const before = cpuMsByPid(command);
  return () => {
    let total = 0;
    for (const [pid, ms] of cpuMsByPid(command)) total += ms - (before.get(pid) ?? 0);
    return total;
  };
}

/** Busy CPU time (ms) of the whole machine, all cores, from /proc/stat. */
export function machineBusyMs(): number {
  const [, ...times] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = times.map(Number);
  return ((user! + nice! + system! + irq! + softirq! + steal!) * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** CPU time (ms) of this process: the load generator and its clients. */
export function benchCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
