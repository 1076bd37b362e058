import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';

/** How a process ended without the harness asking for it. */
export interface Death {
  service: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds since the epoch. */
  at: number;
}

export interface ServiceProcessOptions {
  name: string;
  /** Entry file, relative to `cwd`, run as `node --import tsx <entry>`. */
  entry: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Port of its HTTP server; undefined for the notification worker, which has none. */
  port: number | undefined;
  /** Probe path that answers 200 once it can serve (`/health` or `/ready`). */
  probe: string;
  /** A line the process logs once it is ready, for one without HTTP. */
  readyLine?: string;
  logPath: string;
  /** Longest wait for it to be ready when started; 60 s unless given. */
  startTimeoutMs?: number;
  /** Called when it exits without the harness killing or stopping it. */
  onDeath(death: Death): void;
}

const START_TIMEOUT_MS = 60_000;

/**
 * One service as its own process, as a supervisor (docker's `restart: unless-stopped`) runs it: its output appended
 * to one log file across restarts, and an exit the harness did not cause reported as a death and restarted after a
 * short back-off, so later faults still run on a complete stack.
 */
export class ServiceProcess {
  private child: ChildProcess | undefined;
  /** Set while the harness itself ends the process, so its exit is not a death. */
  private expectedExit = false;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartBackoffMs = 1_000;
  private readonly log: WriteStream;
  private output = '';

  constructor(private readonly options: ServiceProcessOptions) {
    this.log = createWriteStream(options.logPath, { flags: 'a' });
  }

  get name(): string {
    return this.options.name;
  }

  get url(): string {
    if (this.options.port === undefined) throw new Error(`${this.name} has no HTTP port`);
    return `http://127.0.0.1:${this.options.port}`;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the process and waits until it answers its probe (or logs its ready line). */
  async start(): Promise<void> {
    clearTimeout(this.restartTimer);
    this.stopped = false;
    this.expectedExit = false;
    this.output = '';
    this.note(`starting ${this.name}`);
    const child = spawn(process.execPath, ['--import', 'tsx', this.options.entry], {
      cwd: this.options.cwd,
      env: this.options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const capture = (data: Buffer) => {
      this.log.write(data);
      // Only the start-up output is kept in memory, for the ready line and for the error of a failed start.
      if (this.output.length < 200_000) this.output += data.toString();
    };
    child.stdout!.on('data', capture);
    child.stderr!.on('data', capture);
    child.once('exit', (code, signal) => this.exited(child, code, signal));
    const timeoutMs = this.options.startTimeoutMs ?? START_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${this.name} exited while starting (${child.exitCode ?? child.signalCode}): ${this.output.slice(-2_000)}`);
      }
      if (await this.ready()) {
        this.restartBackoffMs = 1_000;
        return;
      }
      await sleep(100);
    }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms: ${this.output.slice(-2_000)}`);
  }

  private async ready(): Promise<boolean> {
    if (this.options.port === undefined) return this.options.readyLine ? this.output.includes(this.options.readyLine) : true;
    return fetch(`${this.url}${this.options.probe}`, { signal: AbortSignal.timeout(1_000) }).then(
      (response) => response.ok,
      () => false,
    );
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    this.note(`${this.name} exited (code ${code}, signal ${signal})${this.expectedExit ? ' as the harness asked' : ''}`);
    if (child !== this.child || this.expectedExit || this.stopped) return;
    this.options.onDeath({ service: this.name, code, signal, at: Date.now() });
    // Restarted like `restart: unless-stopped`, with a growing pause when it keeps dying (e.g. its database is down).
    const delay = this.restartBackoffMs;
    this.restartBackoffMs = Math.min(this.restartBackoffMs * 2, 8_000);
    this.restartTimer = setTimeout(() => {
      if (this.stopped || this.running) return;
      this.start().catch((error: unknown) => this.note(`restart of ${this.name} failed: ${String(error)}`));
    }, delay);
  }

  /** kill -9, as a crash or an OOM kill would. */
  async kill(): Promise<void> {
    await this.signalAndWait('SIGKILL');
  }

  /** SIGTERM, then SIGKILL after `graceMs`; no restart follows. */
  async stop(graceMs = 15_000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || !this.running) return;
    // A paused process cannot handle SIGTERM.
    child.kill('SIGCONT');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.signalAndWait('SIGTERM');
    clearTimeout(timer);
  }

  /** The kernel's state letter of the process (R, S, T when stopped ...), undefined when it is not running. */
  state(): string | undefined {
    const pid = this.pid;
    if (pid === undefined) return undefined;
    try {
      // Fields after the command name, which is in parentheses and may hold spaces.
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    } catch {
      return undefined;
    }
  }

  /** SIGSTOP: the process holds its connections and does nothing, as a long GC pause or a frozen VM would. */
  pause(): void {
    this.child?.kill('SIGSTOP');
    this.note(`${this.name} paused (SIGSTOP)`);
  }

  resume(): void {
    this.child?.kill('SIGCONT');
    this.note(`${this.name} resumed (SIGCONT)`);
  }

  private async signalAndWait(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    this.expectedExit = true;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.note(`harness sends ${signal} to ${this.name} (pid ${child.pid})`);
    child.kill(signal);
    await exited;
  }

  /** A line of the harness's own in the service's log, so the log reads in order with what was done to it. */
  note(message: string): void {
    this.log.write(`${JSON.stringify({ harness: message, time: new Date().toISOString() })}\n`);
  }

  /** The last lines of its log file. */
  tail(lines: number): string {
    try {
      return readFileSync(this.options.logPath, 'utf8').split('\n').slice(-lines - 1).join('\n');
    } catch {
      return '';
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.log.end(() => resolve()));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
