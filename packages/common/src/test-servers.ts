import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

/**
 * Servers of a test's own, for tests that kill, restart or empty them: the machine's shared PostgreSQL and Redis
 * are never touched. Each is started in a temporary directory and stopped (and the directory removed) by `stop`.
 */

/** A free loopback port (there is a small window before the caller binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  /** Pid of the running server, undefined while stopped. */
  readonly pid: number | undefined;
  /** SIGKILL: what an append-only file has not written yet is lost; without one, everything. */
  kill(): Promise<void>;
  /** Starts it again on the same port; `empty` deletes its files first, as a failover to a lagging replica would. */
  start(options?: { empty?: boolean }): Promise<void>;
  /** Stops it and removes its directory. */
  stop(): Promise<void>;
}

/** A redis-server on a free port; `appendonly` turns on AOF (fsync every second), as production should run it. */
export async function startPrivateRedis(options: { appendonly?: boolean } = {}): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'shop-redis-'));
  let child: ChildProcess | undefined;
  const output: string[] = [];
  const launch = async () => {
    const started = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', options.appendonly ? 'yes' : 'no', '--dir', dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    started.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
    started.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
    child = started;
    await until(
      `redis-server on port ${port} (${output.join('').slice(-500)})`,
      async () => {
        if (started.exitCode !== null) throw new Error(`redis-server exited: ${output.join('')}`);
        return output.join('').includes('Ready to accept connections');
      },
      10_000,
    );
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    async kill() {
      if (!child) return;
      child.kill('SIGKILL');
      await exited(child);
      child = undefined;
    },
    async start(startOptions = {}) {
      if (startOptions.empty) for (const file of readdirSync(dir)) rmSync(path.join(dir, file), { recursive: true, force: true });
      output.length = 0;
      await launch();
    },
    async stop() {
      if (child) {
        child.kill('SIGTERM');
        await exited(child);
        child = undefined;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivatePostgres {
  readonly port: number;
  /** URL of database `name` on this server (`postgres` by default). */
  url(name?: string): string;
  createDatabase(name: string): Promise<string>;
  /** Ends every backend of database `name` (pg_terminate_backend), as a failover or an operator would. */
  terminateBackends(name: string): Promise<number>;
  /** Immediate shutdown (pg_ctl -m immediate): clients see their connections cut mid-statement. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The directory of PostgreSQL's server binaries (initdb, pg_ctl), or undefined when none is installed. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = path.join(root, version, 'bin');
    if (existsSync(path.join(bin, 'initdb')) && existsSync(path.join(bin, 'pg_ctl'))) return bin;
  }
  return undefined;
}

/**
 * A PostgreSQL cluster of the test's own (initdb into a temporary directory, trust auth on 127.0.0.1). PostgreSQL
 * refuses to run as root, so as root the cluster belongs to the `postgres` user.
 */
export async function startPrivatePostgres(options: { settings?: Record<string, string> } = {}): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql');
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'shop-pg-'));
  const asRoot = process.getuid?.() === 0;
  const run = (command: string, args: string[]) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(bin, command), ...args]] : [path.join(bin, command), args];
    execFileSync(file as string, argv as string[], { stdio: 'pipe', cwd: dir });
  };
  if (asRoot) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const extra = Object.entries(options.settings ?? {}).map(([name, value]) => ` -c ${name}=${value}`).join('');
  const serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200${extra}`;
  const start = async () => {
    run('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-o', serverOptions, '-w', 'start']);
    await until(`postgres on port ${port}`, async () => {
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      await client.end();
      return true;
    }, 20_000);
  };
  const url = (name = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${name}`;
  const admin = async <T>(fn: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: url('postgres') });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  await start();
  return {
    port,
    url,
    async createDatabase(name) {
      if (!/^\w+$/.test(name)) throw new Error(`bad database name ${name}`);
      await admin((client) => client.query(`CREATE DATABASE ${name}`));
      return url(name);
    },
    terminateBackends: (name) =>
      admin(async (client) => {
        const result = await client.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        return result.rowCount ?? 0;
      }),
    async kill() {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    },
    start,
    async stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      } catch {
        // Already stopped.
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresIds(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}
