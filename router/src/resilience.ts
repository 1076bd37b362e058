import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '@shop/common';

/** How the router protects itself and its subgraphs from a slow or dead subgraph. */
export interface ResilienceConfig {
  /** Deadline of one subgraph fetch, its retry included. */
  timeoutMs: number;
  /** Deadlines by subgraph name (from `<NAME>_SUBGRAPH_TIMEOUT_MS`), over `timeoutMs`. */
  timeoutsMs: Record<string, number>;
  /** Consecutive failed fetches (network error, timeout, 5xx) that open a subgraph's breaker; 0 turns it off. */
  breakerFailures: number;
  /** Longest an open breaker fails fast before it lets one probe fetch through. */
  breakerCooldownMs: number;
  /**
   * While a breaker is open, how often the subgraph's `/health` is asked (in the background, one check at a time):
   * once it answers, the next fetch is the probe, without waiting out the cooldown. 0 or absent: the cooldown only.
   */
  breakerCheckMs?: number;
  /** Retries of a query whose connection failed before any answer (never of a mutation). */
  retries: number;
  /** Base delay before a retry; each retry waits 0.5 to 1.5 times it. */
  retryDelayMs: number;
  /** Identical query fetches in flight at once share one request to the subgraph. */
  dedup: boolean;
}

/** What the resilience layer sends: always a POST with a string body. */
interface SubgraphRequestInit {
  method: string;
  headers: Record<string, string>;
  body: string;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

/** A fetch refused without a network call because the subgraph's breaker is open. */
export class CircuitOpenError extends Error {
  override name = 'CircuitOpenError';
  constructor(readonly subgraph: string) {
    super(`${subgraph} failed repeatedly; not calling it until a probe succeeds`);
  }
}

/** What the metrics count. */
export interface ResilienceEvents {
  breakerOpened?(subgraph: string): void;
  rejected?(subgraph: string): void;
  retried?(subgraph: string): void;
  deduplicated?(subgraph: string): void;
}

/**
 * Closed: fetches go through and consecutive failures are counted. Open (after `threshold` of them):
 * fetches fail at once for `cooldownMs`, or until `allowProbe()` (the subgraph answers its health check). Then
 * the next fetch is a probe (half-open) while the others keep failing fast; the probe's success closes the
 * breaker, its failure opens it again.
 */
export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probeAllowed = false;
  /** Times it opened since it was last closed: the health checks of a subgraph that keeps failing back off. */
  private opens = 0;

  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
    private readonly onChange: (state: BreakerState) => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get state(): BreakerState {
    return this.current;
  }

  /** Whether a fetch may go out now; `probe` marks the one that decides a half-open breaker. */
  acquire(): { allowed: boolean; probe: boolean } {
    if (this.threshold === 0 || this.current === 'closed') return { allowed: true, probe: false };
    if (this.current === 'open' && (this.probeAllowed || this.now() - this.openedAt >= this.cooldownMs)) {
      this.probeAllowed = false;
      this.move('half-open');
      return { allowed: true, probe: true };
    }
    return { allowed: false, probe: false };
  }

  succeeded(probe: boolean): void {
    if (this.current === 'closed') this.failures = 0;
    else if (probe) {
      this.failures = 0;
      this.opens = 0;
      this.move('closed');
    }
    // A fetch started before the breaker opened that ends well decides nothing: the probe does.
  }

  failed(probe: boolean): void {
    if (this.threshold === 0) return;
    if (probe || (this.current === 'closed' && ++this.failures >= this.threshold)) {
      this.openedAt = this.now();
      this.probeAllowed = false;
      this.opens++;
      this.move('open');
    }
  }

  /** An open breaker lets the next fetch through as the probe, before the end of its cooldown. */
  allowProbe(): void {
    if (this.current === 'open') this.probeAllowed = true;
  }

  /** Times it opened in a row without a successful probe (0 while closed). */
  get consecutiveOpens(): number {
    return this.opens;
  }

  private move(state: BreakerState): void {
    this.current = state;
    this.onChange(state);
  }
}

/** A subgraph answer read in full, so it can be handed to several callers (each parses its own copy). */
export interface SubgraphAnswer {
  url: string;
  status: number;
  statusText: string;
  /** Lower-case names; repeated headers joined with ", " as `Headers#get` does. */
  headers: ReadonlyMap<string, string>;
  body: string;
}

/**
 * What `AbortSignal.timeout(ms)` gives (a signal aborted with a TimeoutError at the deadline), with a timer
 * that is cleared once the fetch is over: `AbortSignal.timeout` costs about 2.5 times as much CPU per fetch.
 */
function deadline(ms: number): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
  timer.unref();
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** Codes of a connection that failed before the subgraph answered anything. */
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

function isConnectionError(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_ERRORS.has(code)) return true;
  }
  return false;
}

/**
 * Wraps the router's subgraph fetches: a deadline per subgraph, a circuit breaker per subgraph,
 * one retry of a query whose connection failed, and one request for identical queries in flight.
 */
export class SubgraphResilience {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly inFlight = new Map<string, Promise<SubgraphAnswer>>();
  /** The pending health check of each subgraph whose breaker is open. */
  private readonly checks = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly config: ResilienceConfig,
    private readonly log: Logger,
    private readonly events: ResilienceEvents = {},
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  /** Breaker state of every subgraph fetched so far. */
  states(): Record<string, BreakerState> {
    return Object.fromEntries([...this.breakers].map(([name, breaker]) => [name, breaker.state]));
  }

  breaker(subgraph: string): CircuitBreaker {
    let breaker = this.breakers.get(subgraph);
    if (!breaker) {
      breaker = new CircuitBreaker(this.config.breakerFailures, this.config.breakerCooldownMs, (state) => {
        if (state === 'open') {
          this.events.breakerOpened?.(subgraph);
          this.log.warn({ subgraph, cooldownMs: this.config.breakerCooldownMs }, 'subgraph breaker open: failing fast');
        } else {
          this.log.info({ subgraph, state }, `subgraph breaker ${state}`);
        }
      });
      this.breakers.set(subgraph, breaker);
    }
    return breaker;
  }

  /**
   * Sends one subgraph request (a POST of `body`). `query` marks an operation that only reads: it may be retried
   * when its connection failed, and identical ones in flight share one request.
   */
  async send(subgraph: string, url: string, headers: Record<string, string>, body: string, query: boolean): Promise<SubgraphAnswer> {
    const init = { method: 'POST', headers, body };
    if (!query || !this.config.dedup) return this.guarded(subgraph, url, init, query);
    // The caller's credentials are part of the key: two callers share an answer only if the subgraph
    // would see the same request from both.
    const key = `${subgraph}\n${url}\n${headers.authorization ?? ''}\n${headers['x-shop-identity'] ?? ''}\n${body}`;
    let shared = this.inFlight.get(key);
    if (shared) {
      this.events.deduplicated?.(subgraph);
    } else {
      shared = this.guarded(subgraph, url, init, query).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, shared);
    }
    return shared;
  }

  private async guarded(subgraph: string, url: string, init: SubgraphRequestInit, query: boolean): Promise<SubgraphAnswer> {
    const breaker = this.breaker(subgraph);
    const { allowed, probe } = breaker.acquire();
    if (!allowed) {
      this.events.rejected?.(subgraph);
      throw new CircuitOpenError(subgraph);
    }
    const { signal, clear } = deadline(this.config.timeoutsMs[subgraph] ?? this.config.timeoutMs);
    let snapshot: SubgraphAnswer;
    try {
      snapshot = await this.attempt(subgraph, url, init, signal, query ? this.config.retries : 0);
    } catch (error) {
      this.failed(subgraph, url, breaker, probe);
      // Whichever fetch is used, a missed deadline surfaces as the deadline's own TimeoutError.
      throw signal.aborted ? (signal.reason as Error) : error;
    } finally {
      clear();
    }
    if (snapshot.status >= 500) this.failed(subgraph, url, breaker, probe);
    else breaker.succeeded(probe);
    return snapshot;
  }

  private failed(subgraph: string, url: string, breaker: CircuitBreaker, probe: boolean): void {
    breaker.failed(probe);
    if (breaker.state === 'open') this.watch(subgraph, url, breaker);
  }

  /**
   * While the breaker is open, asks the subgraph's `/health` every `breakerCheckMs` (doubling after each failed
   * probe, up to the cooldown): any answer below 500 means the process is back, and the next fetch is the probe.
   */
  private watch(subgraph: string, url: string, breaker: CircuitBreaker): void {
    const every = this.config.breakerCheckMs ?? 0;
    if (every <= 0 || this.closed || this.checks.has(subgraph)) return;
    const health = new URL('/health', url).href;
    const wait = Math.min(every * 2 ** Math.min(breaker.consecutiveOpens - 1, 10), this.config.breakerCooldownMs);
    const timeoutMs = Math.min(this.config.timeoutsMs[subgraph] ?? this.config.timeoutMs, 1_000);
    const check = async () => {
      let up = false;
      const { signal, clear } = deadline(timeoutMs);
      try {
        const response = await this.fetchImpl(health, { method: 'GET', signal });
        await response.text();
        up = response.status < 500;
      } catch {
        // Not reachable yet.
      } finally {
        clear();
      }
      if (this.closed || breaker.state !== 'open') {
        this.checks.delete(subgraph);
      } else if (up) {
        this.checks.delete(subgraph);
        breaker.allowProbe();
        this.log.info({ subgraph }, 'subgraph answers its health check: the next fetch is a probe');
      } else {
        schedule();
      }
    };
    const schedule = () => {
      const timer = setTimeout(() => void check(), wait);
      timer.unref();
      this.checks.set(subgraph, timer);
    };
    schedule();
  }

  /** Stops the health checks of open breakers (on shutdown). */
  close(): void {
    this.closed = true;
    for (const timer of this.checks.values()) clearTimeout(timer);
    this.checks.clear();
  }

  private async attempt(
    subgraph: string,
    url: string,
    init: SubgraphRequestInit,
    signal: AbortSignal,
    retriesLeft: number,
  ): Promise<SubgraphAnswer> {
    let response: Response;
    try {
      response = await this.fetchImpl(url, { ...init, signal } as RequestInit);
    } catch (error) {
      // Only a connection that failed before any answer, and only for a query: nothing was done twice.
      if (retriesLeft === 0 || signal.aborted || !isConnectionError(error)) throw error;
      this.events.retried?.(subgraph);
      await delay(this.config.retryDelayMs * (0.5 + Math.random()), undefined, { signal });
      return this.attempt(subgraph, url, init, signal, retriesLeft - 1);
    }
    // Read under the same deadline: a subgraph that sends headers and then stalls has not answered.
    const body = await response.text();
    const headers = new Map<string, string>();
    for (const [name, value] of response.headers) {
      const key = name.toLowerCase();
      if (key === 'content-encoding' || key === 'content-length') continue;
      const earlier = headers.get(key);
      headers.set(key, earlier === undefined ? value : `${earlier}, ${value}`);
    }
    return { url: response.url || url, status: response.status, statusText: response.statusText, headers, body };
  }
}
