import { randomUUID } from 'node:crypto';
import type { DemoProduct } from '@shop/common';

/** What one phase of load did, as its clients saw it. */
export interface LoadTally {
  /** Orders whose placeOrder answered with an order, by id. */
  placed: Set<string>;
  /** Orders whose cancelOrder answered OK. */
  cancelled: Set<string>;
  /** Users whose createUser answered OK. */
  usersCreated: Set<string>;
  /** Client-visible failures by `<operation>:<code>` (the last attempt's, after retries). */
  failures: Map<string, number>;
  /** placeOrder attempts repeated with the same idempotency key. */
  retries: number;
}

export function emptyTally(): LoadTally {
  return { placed: new Set(), cancelled: new Set(), usersCreated: new Set(), failures: new Map(), retries: 0 };
}

export interface Customer {
  id: string;
  authorization: string;
  /** Other headers of this customer's requests (e.g. the X-Forwarded-For a load balancer passes on). */
  headers?: Record<string, string>;
}

export interface OrderLoadOptions {
  url: string;
  customers: readonly Customer[];
  products: readonly DemoProduct[];
  /** placeOrder calls started per second. */
  ordersPerSecond: number;
  /** Share of placed orders that are cancelled: half at once, half a few seconds later. */
  cancelShare: number;
  /** createUser calls per second (each gives a welcome notification). */
  signUpsPerSecond: number;
  /** Send `input.idempotencyKey` and retry failed placements with it. */
  idempotencyKeys: boolean;
  /** How long a client waits for an answer; 12 s unless given. */
  requestTimeoutMs?: number;
}

/** Longer than the router's subgraph deadline (10 s), so a slow answer reaches the client as the router's error. */
const REQUEST_TIMEOUT_MS = 12_000;
/** Attempts of one placement with one idempotency key, and the pauses before the 2nd and 3rd. */
const PLACE_ATTEMPTS = 3;
const RETRY_PAUSES_MS = [500, 2_000];

const PLACE = 'mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }';
const CANCEL = 'mutation Cancel($id: ID!, $reason: String) { cancelOrder(id: $id, reason: $reason) { id status } }';
const SIGN_UP = 'mutation SignUp($input: CreateUserInput!) { createUser(input: $input) { id } }';

export interface Answer<T> {
  data?: T | null;
  /** Undefined on success; otherwise the GraphQL error code, `HTTP_<status>`, `NETWORK` or `TIMEOUT`. */
  code?: string;
  message?: string;
}

/** One GraphQL request, its failure reduced to a code a client would branch on. */
export async function request<T>(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  headers: Record<string, string> = {},
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<Answer<T>> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const name = error instanceof Error ? error.name : '';
    return { code: name === 'TimeoutError' ? 'TIMEOUT' : 'NETWORK', message: String(error) };
  }
  let body: { data?: T | null; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    body = (await response.json()) as typeof body;
  } catch {
    return { code: `HTTP_${response.status}`, message: 'not JSON' };
  }
  const error = body.errors?.[0];
  if (error || !response.ok) {
    return { data: body.data, code: error?.extensions?.code ?? `HTTP_${response.status}`, message: error?.message ?? '' };
  }
  return { data: body.data };
}

/** Failures after which the same placement may be sent again with its key (the key makes it safe). */
export const RETRYABLE: ReadonlySet<string> = new Set(['NETWORK', 'TIMEOUT', 'SERVICE_UNAVAILABLE', 'SUBGRAPH_UNAVAILABLE', 'INTERNAL_SERVER_ERROR', 'HTTP_502', 'HTTP_503']);

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)]!;
}

/**
 * A steady stream of checkouts through the router, as customers send them: placeOrder of 1 to 3 demo products
 * in small quantities (some out of stock, so some orders are rejected), cancelOrder on a share of them (some at
 * once, racing the reservation, some seconds later), and a trickle of sign-ups. Every answer is tallied.
 */
export class OrderLoad {
  private tally: LoadTally = emptyTally();
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly laterCancels = new Set<NodeJS.Timeout>();
  private idempotencyKeys: boolean;
  /** Set by stop: checkouts still answering then schedule no later cancellation. */
  private stopping = false;

  constructor(private readonly options: OrderLoadOptions) {
    this.idempotencyKeys = options.idempotencyKeys;
  }

  /** Whether placements carry idempotency keys (false once the API refused the field). */
  get usesIdempotencyKeys(): boolean {
    return this.idempotencyKeys;
  }

  /** Starts sending into a new tally. */
  start(): void {
    this.tally = emptyTally();
    this.stopping = false;
    const tickMs = 20;
    let orderCredit = 0;
    let signUpCredit = 0;
    this.timer = setInterval(() => {
      orderCredit += (this.options.ordersPerSecond * tickMs) / 1000;
      signUpCredit += (this.options.signUpsPerSecond * tickMs) / 1000;
      // A stalled router must not pile up unbounded requests in the client.
      for (; orderCredit >= 1 && this.inFlight.size < 400; orderCredit--) this.track(this.checkout());
      for (; signUpCredit >= 1; signUpCredit--) this.track(this.signUp());
    }, tickMs);
  }

  /** Stops sending, drops cancellations not yet due, waits for the requests in flight; returns the tally. */
  async stop(): Promise<LoadTally> {
    clearInterval(this.timer);
    this.stopping = true;
    for (const timer of this.laterCancels) clearTimeout(timer);
    this.laterCancels.clear();
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    return this.tally;
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private fail(operation: string, code: string): void {
    const key = `${operation}:${code}`;
    this.tally.failures.set(key, (this.tally.failures.get(key) ?? 0) + 1);
  }

  private async checkout(): Promise<void> {
    const tally = this.tally;
    const customer = pick(this.options.customers);
    const chosen = new Set<DemoProduct>();
    const lines = 1 + Math.floor(Math.random() * 3);
    while (chosen.size < lines) chosen.add(pick(this.options.products));
    const items = [...chosen].map((product) => ({ productId: product.id, quantity: 1 + Math.floor(Math.random() * 3) }));
    const key = randomUUID();
    let answer: Answer<{ placeOrder: { id: string; status: string } }> = {};
    for (let attempt = 1; attempt <= PLACE_ATTEMPTS; attempt++) {
      const input = this.idempotencyKeys ? { items, idempotencyKey: key } : { items };
      answer = await request(this.options.url, PLACE, { input }, { ...customer.headers, authorization: customer.authorization }, this.options.requestTimeoutMs);
      if (answer.code === 'GRAPHQL_VALIDATION_FAILED' && this.idempotencyKeys && answer.message?.includes('idempotencyKey')) {
        // The running API has no keys: place without one, and never retry a placement (it could place twice).
        this.idempotencyKeys = false;
        attempt--;
        continue;
      }
      if (!answer.code || !this.idempotencyKeys || !RETRYABLE.has(answer.code) || attempt === PLACE_ATTEMPTS) break;
      tally.retries++;
      await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSES_MS[attempt - 1] ?? 2_000));
    }
    const id = answer.data?.placeOrder?.id;
    if (answer.code || !id) {
      this.fail('placeOrder', answer.code ?? 'NO_DATA');
      return;
    }
    tally.placed.add(id);
    const roll = Math.random();
    if (roll < this.options.cancelShare / 2) {
      await this.cancel(tally, customer, id, 'changed my mind at once');
    } else if (roll < this.options.cancelShare && !this.stopping) {
      const timer = setTimeout(() => {
        this.laterCancels.delete(timer);
        this.track(this.cancel(tally, customer, id, 'changed my mind later'));
      }, 1_000 + Math.random() * 3_000);
      this.laterCancels.add(timer);
    }
  }

  private async cancel(tally: LoadTally, customer: Customer, id: string, reason: string): Promise<void> {
    const answer = await request<{ cancelOrder: { id: string; status: string } }>(
      this.options.url,
      CANCEL,
      { id, reason },
      { ...customer.headers, authorization: customer.authorization },
      this.options.requestTimeoutMs,
    );
    if (answer.code || answer.data?.cancelOrder?.status !== 'CANCELLED') {
      // INVALID_TRANSITION is a rejected order, which cannot be cancelled: expected, tallied like the rest.
      this.fail('cancelOrder', answer.code ?? 'NOT_CANCELLED');
      return;
    }
    tally.cancelled.add(id);
  }

  private async signUp(): Promise<void> {
    const tally = this.tally;
    const tag = randomUUID();
    const answer = await request<{ createUser: { id: string } }>(
      this.options.url,
      SIGN_UP,
      { input: { email: `fault-${tag}@example.com`, name: 'Fault Test', password: `a long passphrase ${tag}` } },
      {},
      this.options.requestTimeoutMs,
    );
    const id = answer.data?.createUser?.id;
    if (answer.code || !id) {
      this.fail('createUser', answer.code ?? 'NO_DATA');
      return;
    }
    tally.usersCreated.add(id);
  }
}
