import { request, type Customer } from '../faults/order-load.js';
import { ORDER_DETAILS } from '../../router/test/fixtures/operations.js';
import { CLIENT_TIMEOUT_MS } from './scale-stack.js';

export interface QueryTally {
  requests: number;
  /** Failures by code; a query is never sent twice by this client, so each one is a failure the client saw. */
  failures: Map<string, number>;
}

/** A steady stream of OrderDetails queries through the router frontend, each customer reading its own demo orders. */
export class QueryLoad {
  private tally: QueryTally = { requests: 0, failures: new Map() };
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly url: string,
    /** Each customer with the ids of orders it may read. */
    private readonly readers: readonly { customer: Customer; orderIds: readonly string[] }[],
    private readonly perSecond: number,
  ) {}

  start(): void {
    this.tally = { requests: 0, failures: new Map() };
    this.timer = setInterval(() => {
      // A stalled router must not pile up unbounded requests in the client.
      if (this.inFlight.size >= 200) return;
      const work = this.query();
      this.inFlight.add(work);
      void work.finally(() => this.inFlight.delete(work));
    }, 1000 / this.perSecond);
  }

  async stop(): Promise<QueryTally> {
    clearInterval(this.timer);
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    return this.tally;
  }

  private async query(): Promise<void> {
    const tally = this.tally;
    const reader = this.readers[Math.floor(Math.random() * this.readers.length)]!;
    const id = reader.orderIds[Math.floor(Math.random() * reader.orderIds.length)]!;
    tally.requests++;
    const answer = await request<{ order: { id: string } | null }>(this.url, ORDER_DETAILS, { id }, {
      ...reader.customer.headers,
      authorization: reader.customer.authorization,
    }, CLIENT_TIMEOUT_MS);
    const code = answer.code ?? (answer.data?.order?.id === id ? undefined : 'NO_DATA');
    if (code) tally.failures.set(code, (tally.failures.get(code) ?? 0) + 1);
  }
}
