import { setTimeout as delay } from 'node:timers/promises';
import type { Fetcher, FetcherHeaders, FetcherRequestInit, FetcherResponse } from '@apollo/utils.fetcher';
import type { Logger } from '@shop/common';

/** How the router protects itself and its subgraphs from a slow or dead subgraph. */
export interface ResilienceConfig {
  /** Deadline of one subgraph fetch, its retry included. */
  timeoutMs: number;
  /** Deadlines by subgraph name (from `<NAME>_SUBGRAPH_TIMEOUT_MS`), over `timeoutMs`. */
  timeoutsMs: Record<string, number>;
  /** Consecutive failed fetches (network error, timeout, 5xx) that open a subgraph's breaker; 0 turns it off. */
  breakerFailures: number;
  /** How long an open breaker fails fast before it lets one probe fetch through. */
  breakerCooldownMs: number;
  /** Retries of a query whose connection failed before any answer (never of a mutation). */
  retries: number;
  /** Base delay before a retry; each retry waits 0.5 to 1.5 times it. */
  retryDelayMs: number;
  /** Identical query fetches in flight at once share one request to the subgraph. */
  dedup: boolean;
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
 * fetches fail at once for `cooldownMs`. Then the next fetch is a probe (half-open) while the others keep
 * failing fast; the probe's success closes the breaker, its failure opens it again.
 */
export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;

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
    if (this.current === 'open' && this.now() - this.openedAt >= this.cooldownMs) {
      this.move('half-open');
      return { allowed: true, probe: true };
    }
    return { allowed: false, probe: false };
  }

  succeeded(probe: boolean): void {
    if (this.current === 'closed') this.failures = 0;
    else if (probe) {
      this.failures = 0;
      this.move('closed');
    }
    // A fetch started before the breaker opened that ends well decides nothing: the probe does.
  }

  failed(probe: boolean): void {
    if (this.threshold === 0) return;
    if (probe || (this.current === 'closed' && ++this.failures >= this.threshold)) {
      this.openedAt = this.now();
      this.move('open');
    }
  }

  private move(state: BreakerState): void {
    this.current = state;
    this.onChange(state);
  }
}

/** A subgraph answer read in full, so it can be handed to several callers. */
interface Snapshot {
  url: string;
  status: number;
  statusText: string;
  /** Lower-case names; repeated headers joined with ", " as `Headers#get` does. */
  headers: ReadonlyMap<string, string>;
  body: string;
}

const immutable = () => {
  throw new TypeError('immutable');
};

/** A snapshot's headers as a response's: readable, not writable (like a fetch Response's). */
class SnapshotHeaders implements FetcherHeaders {
  constructor(private readonly map: ReadonlyMap<string, string>) {}

  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }

  append = immutable;
  delete = immutable;
  set = immutable;

  forEach(fn: (value: string, name: string) => void): void {
    this.map.forEach(fn);
  }

  entries(): IterableIterator<[string, string]> {
    return this.map.entries();
  }

  keys(): IterableIterator<string> {
    return this.map.keys();
  }

  values(): IterableIterator<string> {
    return this.map.values();
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.map.entries();
  }
}

/**
 * One caller's response over a snapshot: what the data source reads (status, headers, a body read once as
 * text or JSON), each caller parsing its own copy. A WHATWG `Response` per fetch (its body stream, then
 * `json()` through it) cost about 8% of the router's CPU per request in a profile; this is a string.
 */
class SnapshotResponse implements FetcherResponse {
  readonly ok: boolean;
  readonly redirected = false;
  readonly headers: SnapshotHeaders;
  private used = false;

  constructor(private readonly snapshot: Snapshot) {
    this.ok = snapshot.status >= 200 && snapshot.status <= 299;
    this.headers = new SnapshotHeaders(snapshot.headers);
  }

  get url(): string {
    return this.snapshot.url;
  }

  get status(): number {
    return this.snapshot.status;
  }

  get statusText(): string {
    return this.snapshot.statusText;
  }

  get bodyUsed(): boolean {
    return this.used;
  }

  async text(): Promise<string> {
    // These statuses have no body, which is never "used" (as with fetch's Response).
    if (NO_BODY_STATUSES.has(this.snapshot.status)) return '';
    if (this.used) throw new TypeError('Body is unusable: Body has already been read');
    this.used = true;
    return this.snapshot.body;
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = Buffer.from(await this.text(), 'utf8');
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  }

  clone(): FetcherResponse {
    if (this.used) throw new TypeError('Response.clone: Body has already been consumed.');
    return new SnapshotResponse(this.snapshot);
  }
}

const NO_BODY_STATUSES = new Set([101, 204, 205, 304]);

const QUERY_BODY_START = '{"query":"';

/**
 * Only operations that read are retried or shared; anything unclear is treated as a write.
 *
 * The data source sends `JSON.stringify({ query, ... })`, so the operation's text starts right after
 * `{"query":"`: its first characters tell the kind without parsing the whole body (variables included),
 * which was 1.6% of the router's CPU per request. The shortcut only answers "query", and only where parsing
 * must agree: no other `"query"` anywhere after it (a later duplicate key would win in JSON.parse) and no
 * `\u` escape (which could spell a key or a letter differently). Every other body is parsed as before.
 * (A body that is not JSON at all passes the shortcut if it starts like one; a subgraph refuses it unread,
 * so sending it twice or sharing the refusal changes nothing.)
 */
export function isQuery(body: FetcherRequestInit['body']): boolean {
  if (typeof body !== 'string') return false;
  if (body.startsWith(QUERY_BODY_START) && body.indexOf('"query"', QUERY_BODY_START.length) === -1 && body.indexOf('\\u') === -1) {
    let i = QUERY_BODY_START.length;
    while (body.charCodeAt(i) === 0x20) i++;
    // Anything else (a mutation, other white space, an escape such as \n) is decided by parsing, below.
    if (/^(\{|query\b)/.test(body.slice(i, i + 6))) return true;
  }
  let query: unknown;
  try {
    query = (JSON.parse(body) as { query?: unknown }).query;
  } catch {
    return false;
  }
  return typeof query === 'string' && /^\s*(\{|query\b)/.test(query);
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

function headerOf(init: FetcherRequestInit | undefined, name: string): string {
  for (const [key, value] of Object.entries(init?.headers ?? {})) if (key.toLowerCase() === name) return value;
  return '';
}

/**
 * Wraps the router's subgraph fetches: a deadline per subgraph, a circuit breaker per subgraph,
 * one retry of a query whose connection failed, and one request for identical queries in flight.
 */
export class SubgraphResilience {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly inFlight = new Map<string, Promise<Snapshot>>();

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

  /** The fetcher of one subgraph's data sources. */
  fetcher(subgraph: string): Fetcher {
    return async (url, init) => {
      const query = isQuery(init?.body);
      if (!query || !this.config.dedup) return new SnapshotResponse(await this.guarded(subgraph, url, init, query));
      // The caller's credentials are part of the key: two callers share an answer only if the subgraph
      // would see the same request from both.
      const key = [subgraph, url, headerOf(init, 'authorization'), headerOf(init, 'x-shop-identity'), init?.body].join('\n');
      let shared = this.inFlight.get(key);
      if (shared) {
        this.events.deduplicated?.(subgraph);
      } else {
        shared = this.guarded(subgraph, url, init, query).finally(() => this.inFlight.delete(key));
        this.inFlight.set(key, shared);
      }
      return new SnapshotResponse(await shared);
    };
  }

  private async guarded(subgraph: string, url: string, init: FetcherRequestInit | undefined, query: boolean): Promise<Snapshot> {
    const breaker = this.breaker(subgraph);
    const { allowed, probe } = breaker.acquire();
    if (!allowed) {
      this.events.rejected?.(subgraph);
      throw new CircuitOpenError(subgraph);
    }
    const { signal, clear } = deadline(this.config.timeoutsMs[subgraph] ?? this.config.timeoutMs);
    let snapshot: Snapshot;
    try {
      snapshot = await this.attempt(subgraph, url, init, signal, query ? this.config.retries : 0);
    } catch (error) {
      breaker.failed(probe);
      // Whichever fetch is used, a missed deadline surfaces as the deadline's own TimeoutError.
      throw signal.aborted ? (signal.reason as Error) : error;
    } finally {
      clear();
    }
    if (snapshot.status >= 500) breaker.failed(probe);
    else breaker.succeeded(probe);
    return snapshot;
  }

  private async attempt(
    subgraph: string,
    url: string,
    init: FetcherRequestInit | undefined,
    signal: AbortSignal,
    retriesLeft: number,
  ): Promise<Snapshot> {
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
