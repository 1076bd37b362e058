import { randomUUID } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { DemoProduct } from '@shop/common';
import { RETRYABLE, request, type Answer, type Customer } from '../faults/order-load.js';
import { sleep } from '../faults/service-process.js';
import { CLIENT_TIMEOUT_MS } from './scale-stack.js';

const PLACE = 'mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }';
const CANCEL = 'mutation Cancel($id: ID!, $reason: String) { cancelOrder(id: $id, reason: $reason) { id status } }';
const MOVE = 'mutation Move($id: ID!, $s: OrderStatus!) { updateOrderStatus(id: $id, status: $s) { id status } }';
const FOLLOW = 'subscription Follow($id: ID!) { orderStatusChanged(orderId: $id) { id status statusHistory { status } } }';

const FINAL = new Set(['CANCELLED', 'REJECTED', 'DELIVERED']);
/** Attempts of one mutation (the same idempotency key for placeOrder), and the pause between them. */
const ATTEMPTS = 4;
const RETRY_PAUSE_MS = 1_000;
/** Longest wait for the subscription to show an expected status before the order is left as it is. */
const STEP_TIMEOUT_MS = 15_000;

/** One event as the subscriber received it. */
interface Seen {
  status: string;
  /** The order's whole history, as the event carried it. */
  history: string[];
  /** The first event after the subscriber (re)subscribed: the order as it is then, not a change. */
  current: boolean;
}

/** One followed order, from placement to its last status. */
export interface FollowedOrder {
  id: string;
  customer: Customer;
  events: Seen[];
  /** Times the subscriber subscribed again after its router ended the subscription (e.g. shutting down). */
  resubscribed: number;
  /** Sockets the subscriber opened: more than one when its connection was cut (its router killed or stopped). */
  connections: number;
  errors: string[];
}

/** What the followed orders of one phase did, as their clients saw it. */
export interface LiveTally {
  orders: FollowedOrder[];
  /** Mutations sent (with retries). */
  requests: number;
  retries: number;
  /** Client-visible failures after the retries, by `<operation>:<code>`. */
  failures: Map<string, number>;
}

export interface LiveOrdersOptions {
  /** The router frontend (HTTP; the WebSocket URL is derived from it). */
  url: string;
  customers: readonly Customer[];
  admin: Customer;
  products: readonly DemoProduct[];
  /** Followed orders started per second. */
  perSecond: number;
}

/** An error as a line: graphql-ws reports closed sockets as events and GraphQL errors as arrays. */
function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null) {
    const { type, message, code, reason } = error as { type?: unknown; message?: unknown; code?: unknown; reason?: unknown };
    if (type !== undefined || code !== undefined) return `socket ${String(type ?? '')} ${String(code ?? '')} ${String(message ?? reason ?? '')}`.trim();
  }
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}

/** The statuses of the order's history that its subscriber never saw: neither as an event nor in the current state it got on (re)subscribing. */
export function missedStatuses(order: FollowedOrder, history: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const event of order.events) {
    seen.add(event.status);
    if (event.current) for (const status of event.history) seen.add(status);
  }
  return history.filter((status) => !seen.has(status));
}

/**
 * Customers who place an order and follow it live over graphql-ws through the router frontend (so through either
 * router), while the order moves on: confirmed or rejected by the reservation, then cancelled by its customer or
 * shipped and delivered by the administrator (so through either orders replica). A subscriber whose socket or
 * subscription is cut subscribes again, and then first gets the order as it is.
 */
export class LiveOrders {
  private tally: LiveTally = { orders: [], requests: 0, retries: 0, failures: new Map() };
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly clients = new Set<Client>();
  /** Confirmed orders wait here before they move on, so their subscriptions stay open through a phase's fault. */
  private gate: Promise<void> = Promise.resolve();

  constructor(private readonly options: LiveOrdersOptions) {}

  /**
   * Starts following: `burst` orders at once (each subscriber on its own socket, spread over the routers by the
   * balancer), then `perSecond`. Confirmed orders are held until `release` is called, so the subscriptions open
   * before a fault are still open when it strikes.
   */
  start(burst = 0): { release: () => void } {
    this.tally = { orders: [], requests: 0, retries: 0, failures: new Map() };
    let release = () => {};
    this.gate = new Promise<void>((resolve) => (release = resolve));
    for (let i = 0; i < burst; i++) this.launch();
    this.timer = setInterval(() => this.launch(), 1000 / this.options.perSecond);
    return { release };
  }

  private launch(): void {
    // Never rejects: what goes wrong is tallied as a failure of the client.
    const work = this.follow().catch((error: unknown) => this.fail('follow', error instanceof Error ? error.message : describe(error)));
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /** Starts no more orders and waits for the followed ones to reach their last status (or their steps to time out). */
  async stop(): Promise<LiveTally> {
    clearInterval(this.timer);
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    return this.tally;
  }

  private fail(operation: string, code: string): void {
    const key = `${operation}:${code}`;
    this.tally.failures.set(key, (this.tally.failures.get(key) ?? 0) + 1);
  }

  /** A mutation, sent again on a failure a load balancer or a restart explains; the answer of the last attempt. */
  private async mutate<T>(operation: string, query: string, variables: Record<string, unknown>, as: Customer): Promise<Answer<T>> {
    let answer: Answer<T> = {};
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      this.tally.requests++;
      answer = await request<T>(this.options.url, query, variables, { ...as.headers, authorization: as.authorization }, CLIENT_TIMEOUT_MS);
      // A change refused after a retry was made by the attempt whose answer was lost.
      if (attempt > 1 && answer.code === 'INVALID_TRANSITION') answer = {};
      if (!answer.code || !RETRYABLE.has(answer.code) || attempt === ATTEMPTS) break;
      this.tally.retries++;
      await sleep(RETRY_PAUSE_MS);
    }
    if (answer.code) this.fail(operation, answer.code);
    return answer;
  }

  private async follow(): Promise<void> {
    const { customers, products } = this.options;
    const customer = customers[Math.floor(Math.random() * customers.length)]!;
    const product = products[Math.floor(Math.random() * products.length)]!;
    const placed = await this.mutate<{ placeOrder: { id: string } }>(
      'placeOrder',
      PLACE,
      { input: { items: [{ productId: product.id, quantity: 1 }], idempotencyKey: randomUUID() } },
      customer,
    );
    const id = placed.data?.placeOrder?.id;
    if (!id) return;
    const order: FollowedOrder = { id, customer, events: [], resubscribed: 0, connections: 0, errors: [] };
    this.tally.orders.push(order);
    const client = this.subscriber(customer);
    let done = false;
    let awaitingCurrent = true;
    const subscribe = (): void => {
      awaitingCurrent = true;
      client.subscribe<{ orderStatusChanged: { status: string; statusHistory: { status: string }[] } }>(
        { query: FOLLOW, variables: { id }, operationName: 'Follow' },
        {
          next: (result) => {
            const event = result.data?.orderStatusChanged;
            if (event) {
              order.events.push({ status: event.status, history: event.statusHistory.map((s) => s.status), current: awaitingCurrent });
              awaitingCurrent = false;
            }
            for (const error of result.errors ?? []) order.errors.push(`${String(error.extensions?.code)}: ${error.message}`);
          },
          error: (error) => {
            order.errors.push(describe(error));
            again();
          },
          // The router ends a subscription when it shuts down: follow on through the other one.
          complete: () => again(),
        },
      );
    };
    const again = (): void => {
      if (done) return;
      order.resubscribed++;
      setTimeout(() => done || subscribe(), 200);
    };
    // After a reconnect, graphql-ws subscribes again by itself: the next event is the order as it is.
    client.on('connected', () => {
      order.connections++;
      awaitingCurrent = true;
    });
    subscribe();
    try {
      const first = await this.until(order, (s) => s !== 'PENDING');
      if (first === 'CONFIRMED') {
        await this.gate;
        if (Math.random() < 0.4) {
          const cancelled = await this.mutate('cancelOrder', CANCEL, { id, reason: 'scale test' }, customer);
          if (!cancelled.code) await this.until(order, (s) => s === 'CANCELLED');
        } else {
          const shipped = await this.mutate('updateOrderStatus', MOVE, { id, s: 'SHIPPED' }, this.options.admin);
          if (!shipped.code || shipped.code === 'INVALID_TRANSITION') await this.until(order, (s) => s === 'SHIPPED' || s === 'DELIVERED');
          const delivered = await this.mutate('updateOrderStatus', MOVE, { id, s: 'DELIVERED' }, this.options.admin);
          if (!delivered.code || delivered.code === 'INVALID_TRANSITION') await this.until(order, (s) => s === 'DELIVERED');
        }
      }
      // A last event may still be on its way when the status shows: give it a moment.
      if (!FINAL.has(order.events.at(-1)?.status ?? '')) await this.until(order, (s) => FINAL.has(s));
    } finally {
      done = true;
      this.clients.delete(client);
      // Closing a socket that is still connecting reports an error event: nothing to act on.
      await Promise.resolve(client.dispose()).catch(() => undefined);
    }
  }

  /** Waits until an event's status passes `test`; returns the last status seen (undefined if none). */
  private async until(order: FollowedOrder, test: (status: string) => boolean): Promise<string | undefined> {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const status = order.events.at(-1)?.status;
      if (status !== undefined && test(status)) return status;
      await sleep(50);
    }
    return order.events.at(-1)?.status;
  }

  /** A graphql-ws client on its own socket, as the customer's browser would open, reconnecting for as long as it is used. */
  private subscriber(customer: Customer): Client {
    const headers = customer.headers ?? {};
    // ws takes headers as an option; graphql-ws constructs the socket with (url, protocol) only.
    class ForwardedWebSocket extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols, { headers });
      }
    }
    const client = createClient({
      url: this.options.url.replace(/^http/, 'ws'),
      webSocketImpl: ForwardedWebSocket,
      lazy: true,
      retryAttempts: 30,
      shouldRetry: () => true,
      retryWait: () => sleep(300),
      connectionParams: () => ({ authorization: customer.authorization }),
    });
    this.clients.add(client);
    return client;
  }
}
