import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '@shop/common/test-servers';
import { sleep } from '../faults/service-process.js';

/** One tier behind the load balancer: a frontend port and the replicas' ports. */
export interface Tier {
  name: string;
  frontendPort: number;
  servers: { name: string; port: number }[];
  /** Path HAProxy's health check asks for; 200 means the replica takes traffic. */
  check: string;
  /** Pass the client's address on in X-Forwarded-For (the routers count rate limits by it). */
  forwardFor?: boolean;
}

/** A server's line of HAProxy's statistics. */
export interface ServerStats {
  status: string;
  /** Requests sent to it again (to it or another server) after a failure; its retries and redispatches. */
  retries: number;
  redispatches: number;
  /** Connection and response errors HAProxy saw from it. */
  connectionErrors: number;
  responseErrors: number;
}

/**
 * The load balancer's configuration: one frontend per tier on a loopback port, the replica with the fewest
 * connections first, health checks every second (three failures take a replica out, two successes bring it back), and a request whose
 * connection is refused or whose replica died before answering sent again to another one (`option redispatch`,
 * `retry-on`): what a production balancer in front of stateless replicas does.
 */
export function haproxyConfig(tiers: readonly Tier[], statsPort: number): string {
  const lines = [
    'global',
    '  maxconn 4096',
    '',
    'defaults',
    '  mode http',
    '  timeout connect 1s',
    '  timeout client 60s',
    // Longer than the routers' subgraph deadline in this test (20 s): the router answers first.
    '  timeout server 45s',
    '  timeout http-keep-alive 10s',
    // WebSockets (graphql-ws) once upgraded.
    '  timeout tunnel 1h',
    '  timeout queue 5s',
    '  retries 3',
    '  option redispatch 1',
    // A refused connection, or a replica that closed it without an answer (killed mid-request): try another one.
    // Every request is buffered for this; placeOrder carries an idempotency key, so a second copy is harmless.
    '  retry-on conn-failure empty-response junk-response',
    // A killed replica refuses the check's connection at once: three refusals 250 ms apart take it out. A slow
    // answer is given time: on a starved machine a replica's /ready may take seconds, and the tier must not be
    // emptied because its last replica is busy.
    '  timeout check 10s',
    '  default-server inter 1s fastinter 250 downinter 500 rise 2 fall 3',
    '',
    'listen stats',
    `  bind 127.0.0.1:${statsPort}`,
    '  stats enable',
    '  stats uri /stats',
    '  stats refresh 0',
  ];
  for (const tier of tiers) {
    lines.push(
      '',
      `frontend ${tier.name}`,
      `  bind 127.0.0.1:${tier.frontendPort}`,
      ...(tier.forwardFor ? ['  option forwardfor'] : []),
      `  default_backend ${tier.name}`,
      '',
      `backend ${tier.name}`,
      // Least connections: long-lived WebSockets and short requests both spread evenly.
      '  balance leastconn',
      `  option httpchk GET ${tier.check}`,
      '  http-check expect status 200',
      ...tier.servers.map((server) => `  server ${server.name} 127.0.0.1:${server.port} check`),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** HAProxy (Debian's package) as a child process in the foreground, on a generated configuration. */
export class Haproxy {
  private constructor(
    private readonly child: ChildProcess,
    readonly statsPort: number,
  ) {}

  static async start(tiers: readonly Tier[], dir: string): Promise<Haproxy> {
    const statsPort = await freePort();
    const configPath = path.join(dir, 'haproxy.cfg');
    writeFileSync(configPath, haproxyConfig(tiers, statsPort));
    // A broken configuration fails here with HAProxy's own message.
    execFileSync('haproxy', ['-c', '-q', '-f', configPath], { stdio: 'pipe' });
    const log = createWriteStream(path.join(dir, 'logs', 'haproxy.log'), { flags: 'a' });
    const child = spawn('haproxy', ['-db', '-f', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    const haproxy = new Haproxy(child, statsPort);
    const deadline = Date.now() + 10_000;
    while (!(await haproxy.stats().then(() => true, () => false))) {
      if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}); see ${path.join(dir, 'logs', 'haproxy.log')}`);
      if (Date.now() > deadline) throw new Error('haproxy did not answer on its stats port within 10 s');
      await sleep(100);
    }
    return haproxy;
  }

  /** Every server's statistics, by `<backend>/<server>`. */
  async stats(): Promise<Map<string, ServerStats>> {
    const response = await fetch(`http://127.0.0.1:${this.statsPort}/stats;csv`, { signal: AbortSignal.timeout(2_000) });
    const [header, ...rows] = (await response.text()).trim().split('\n');
    const columns = header!.replace(/^# /, '').split(',');
    const at = (row: string[], name: string) => row[columns.indexOf(name)] ?? '';
    const stats = new Map<string, ServerStats>();
    for (const line of rows) {
      const row = line.split(',');
      const server = at(row, 'svname');
      if (server === 'FRONTEND' || server === 'BACKEND') continue;
      stats.set(`${at(row, 'pxname')}/${server}`, {
        status: at(row, 'status'),
        retries: Number(at(row, 'wretr')) || 0,
        redispatches: Number(at(row, 'wredis')) || 0,
        connectionErrors: Number(at(row, 'econ')) || 0,
        responseErrors: Number(at(row, 'eresp')) || 0,
      });
    }
    return stats;
  }

  /** Waits until HAProxy's health checks see the server UP (it takes traffic again), or throws after `timeoutMs`. */
  async waitUp(backend: string, server: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = (await this.stats().catch(() => undefined))?.get(`${backend}/${server}`)?.status;
      if (status === 'UP') return;
      if (Date.now() > deadline) throw new Error(`haproxy: ${backend}/${server} is ${status ?? 'unknown'} after ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    await exited;
  }
}
