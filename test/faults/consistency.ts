import pg from 'pg';
import type { SubgraphName } from './fault-stack.js';
import type { LoadTally } from './order-load.js';
import { sleep } from './service-process.js';

/** Statuses in which an order holds its units in inventory. */
const HOLDING = new Set(['CONFIRMED', 'SHIPPED', 'DELIVERED']);
const ORDER_JOB = /^order-([0-9a-f-]{36})-([A-Z]+)$/;
const WELCOME_JOB = /^welcome-([0-9a-f-]{36})$/;

/** Everything the checks read, straight from the four databases. */
export interface Snapshot {
  orders: Map<string, { status: string; userId: string }>;
  /** Lines by order: product id to quantity. */
  items: Map<string, Map<string, number>>;
  /** Status history by order, in insertion order. */
  history: Map<string, string[]>;
  userIds: Set<string>;
  /** Rows of the notifications table by job id. */
  notifications: Map<string, number>;
  /** Units held (outcome reserved, not released) by order: product id to quantity. */
  held: Map<string, Map<string, number>>;
  /** Outcome rows by order. */
  outcomes: Map<string, string>;
  stock: Map<string, number>;
}

async function read<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000, query_timeout: 20_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function add(map: Map<string, Map<string, number>>, key: string, product: string, quantity: number): void {
  let inner = map.get(key);
  if (!inner) map.set(key, (inner = new Map()));
  inner.set(product, (inner.get(product) ?? 0) + quantity);
}

export async function readSnapshot(urls: Record<SubgraphName, string>): Promise<Snapshot> {
  const [orderRows, itemRows, historyRows, userRows, notificationRows, reservationRows, stockRows] = await Promise.all([
    read<{ id: string; status: string; user_id: string }>(urls.orders, 'SELECT id::text, status, user_id::text FROM orders'),
    read<{ order_id: string; product_id: string; quantity: number }>(
      urls.orders,
      'SELECT order_id::text, product_id::text, quantity FROM order_items',
    ),
    read<{ order_id: string; status: string }>(urls.orders, 'SELECT order_id::text, status FROM order_status_changes ORDER BY id'),
    read<{ id: string }>(urls.users, 'SELECT id::text FROM users'),
    read<{ job_id: string; n: number }>(urls.users, 'SELECT job_id, count(*)::int AS n FROM notifications GROUP BY job_id'),
    read<{ order_id: string; outcome: string; active: boolean; product_id: string | null; quantity: number | null }>(
      urls.inventory,
      `SELECT o.order_id::text, o.outcome, (o.outcome = 'reserved' AND o.released_at IS NULL) AS active,
              r.product_id::text, r.quantity
         FROM reservation_outcomes o LEFT JOIN reservations r USING (order_id)`,
    ),
    read<{ product_id: string; available: number }>(urls.inventory, 'SELECT product_id::text, available FROM stock'),
  ]);
  const snapshot: Snapshot = {
    orders: new Map(orderRows.map((r) => [r.id, { status: r.status, userId: r.user_id }])),
    items: new Map(),
    history: new Map(),
    userIds: new Set(userRows.map((r) => r.id)),
    notifications: new Map(notificationRows.map((r) => [r.job_id, r.n])),
    held: new Map(),
    outcomes: new Map(),
    stock: new Map(stockRows.map((r) => [r.product_id, r.available])),
  };
  for (const r of itemRows) add(snapshot.items, r.order_id, r.product_id, r.quantity);
  for (const r of historyRows) {
    const list = snapshot.history.get(r.order_id) ?? [];
    list.push(r.status);
    snapshot.history.set(r.order_id, list);
  }
  for (const r of reservationRows) {
    snapshot.outcomes.set(r.order_id, r.outcome);
    if (r.active && r.product_id && r.quantity) add(snapshot.held, r.order_id, r.product_id, r.quantity);
  }
  return snapshot;
}

/** What existed before the checked window: the demo data, or also earlier phases' orders and users. */
export interface Known {
  orders: ReadonlySet<string>;
  users: ReadonlySet<string>;
}

/** The result of one round of checks on the orders and users of one window. */
export interface Verdict {
  /** Orders created in the window (in the database, whether or not their client saw the answer). */
  orders: number;
  byStatus: Record<string, number>;
  /** placeOrder answered OK but the order is not in the orders database. */
  lostOrders: string[];
  /** cancelOrder answered OK but the order is not CANCELLED. */
  uncancelled: string[];
  pending: string[];
  /** Orders of the window holding other units than their status says (PENDING ones are counted above). */
  wrongHoldings: { orderId: string; status: string; held: number; expected: number }[];
  /** Units held by the window's orders, and what their statuses say they should hold. */
  reservedUnits: number;
  expectedUnits: number;
  /** Over all orders of the test. */
  globalReservedUnits: number;
  globalExpectedUnits: number;
  /** Products whose units are not where they started (available + held != initial), and negative ones. */
  unbalancedProducts: string[];
  negativeStock: string[];
  /** Active reservations of orders the orders database does not have. */
  strayReservations: string[];
  /** Orders whose history names one status twice. */
  repeatedHistory: string[];
  notifications: { expected: number; recorded: number; missing: string[]; doubled: string[]; unexpected: string[] };
  /** Each failed check, in words; empty when the window is consistent. */
  problems: string[];
}

function sum(map: Map<string, number> | undefined): number {
  let total = 0;
  for (const value of map?.values() ?? []) total += value;
  return total;
}

function sameHoldings(a: Map<string, number> | undefined, b: Map<string, number> | undefined): boolean {
  const left = a ?? new Map<string, number>();
  const right = b ?? new Map<string, number>();
  if (left.size !== right.size) return false;
  for (const [key, value] of left) if (right.get(key) !== value) return false;
  return true;
}

function sample(list: readonly string[]): string {
  return list.length === 0 ? '' : ` (e.g. ${list.slice(0, 3).join(', ')})`;
}

/**
 * Checks the orders and users created after `known` (the window) against what their clients were told and against
 * each other; stock is checked over the whole test, since units are shared by every window's orders.
 */
export function check(
  snapshot: Snapshot,
  seed: Known & { stock: ReadonlyMap<string, number> },
  known: Known,
  tally: Pick<LoadTally, 'placed' | 'cancelled' | 'usersCreated'>,
): Verdict {
  const window = [...snapshot.orders.keys()].filter((id) => !known.orders.has(id));
  const testOrders = [...snapshot.orders.keys()].filter((id) => !seed.orders.has(id));
  const newUsers = [...snapshot.userIds].filter((id) => !known.users.has(id));
  const byStatus: Record<string, number> = {};
  for (const id of window) {
    const status = snapshot.orders.get(id)!.status;
    byStatus[status] = (byStatus[status] ?? 0) + 1;
  }
  const lostOrders = [...tally.placed].filter((id) => !snapshot.orders.has(id));
  const lostUsers = [...tally.usersCreated].filter((id) => !snapshot.userIds.has(id));
  const uncancelled = [...tally.cancelled].filter((id) => snapshot.orders.get(id)?.status !== 'CANCELLED');
  const pending = window.filter((id) => snapshot.orders.get(id)!.status === 'PENDING');

  const expectedHolding = (id: string) => (HOLDING.has(snapshot.orders.get(id)!.status) ? snapshot.items.get(id) : undefined);
  const wrongHoldings: Verdict['wrongHoldings'] = [];
  let reservedUnits = 0;
  let expectedUnits = 0;
  for (const id of window) {
    const status = snapshot.orders.get(id)!.status;
    const held = snapshot.held.get(id);
    const expected = expectedHolding(id);
    reservedUnits += sum(held);
    expectedUnits += sum(expected);
    if (status !== 'PENDING' && !sameHoldings(held, expected)) {
      wrongHoldings.push({ orderId: id, status, held: sum(held), expected: sum(expected) });
    }
  }
  let globalReservedUnits = 0;
  let globalExpectedUnits = 0;
  for (const id of testOrders) globalExpectedUnits += sum(expectedHolding(id));
  const heldByProduct = new Map<string, number>();
  const strayReservations: string[] = [];
  for (const [orderId, held] of snapshot.held) {
    globalReservedUnits += sum(held);
    if (!snapshot.orders.has(orderId)) strayReservations.push(orderId);
    for (const [product, quantity] of held) heldByProduct.set(product, (heldByProduct.get(product) ?? 0) + quantity);
  }
  const unbalancedProducts: string[] = [];
  const negativeStock: string[] = [];
  for (const [product, initial] of seed.stock) {
    const available = snapshot.stock.get(product) ?? 0;
    if (available < 0) negativeStock.push(product);
    if (available + (heldByProduct.get(product) ?? 0) !== initial) unbalancedProducts.push(product);
  }
  const repeatedHistory = window.filter((id) => {
    const history = snapshot.history.get(id) ?? [];
    return new Set(history).size !== history.length;
  });

  const inWindow = new Set(window);
  const usersInWindow = new Set(newUsers);
  const expectedJobs = new Set<string>();
  for (const id of window) for (const status of snapshot.history.get(id) ?? []) expectedJobs.add(`order-${id}-${status}`);
  for (const id of newUsers) expectedJobs.add(`welcome-${id}`);
  const recordedJobs: string[] = [];
  for (const jobId of snapshot.notifications.keys()) {
    const order = ORDER_JOB.exec(jobId);
    const welcome = WELCOME_JOB.exec(jobId);
    if ((order && inWindow.has(order[1]!)) || (welcome && usersInWindow.has(welcome[1]!))) recordedJobs.push(jobId);
  }
  const missing = [...expectedJobs].filter((jobId) => !snapshot.notifications.has(jobId));
  const doubled = recordedJobs.filter((jobId) => snapshot.notifications.get(jobId)! > 1);
  const unexpected = recordedJobs.filter((jobId) => !expectedJobs.has(jobId));

  const problems: string[] = [];
  if (lostOrders.length) problems.push(`${lostOrders.length} orders answered OK are not in the orders database${sample(lostOrders)}`);
  if (lostUsers.length) problems.push(`${lostUsers.length} users answered OK are not in the users database${sample(lostUsers)}`);
  if (uncancelled.length) {
    const statuses = uncancelled.map((id) => `${id}: ${snapshot.orders.get(id)?.status ?? 'missing'}`);
    problems.push(`${uncancelled.length} orders whose cancelOrder answered OK are not CANCELLED${sample(statuses)}`);
  }
  if (pending.length) problems.push(`${pending.length} orders left PENDING${sample(pending)}`);
  if (wrongHoldings.length) {
    const described = wrongHoldings.map((w) => `${w.orderId} ${w.status} holds ${w.held}, should ${w.expected}`);
    problems.push(`${wrongHoldings.length} orders hold other units than their status says${sample(described)}`);
  }
  if (negativeStock.length) problems.push(`${negativeStock.length} products with negative stock${sample(negativeStock)}`);
  if (unbalancedProducts.length) {
    problems.push(`${unbalancedProducts.length} products where available + held != initial stock${sample(unbalancedProducts)}`);
  }
  if (strayReservations.length) {
    problems.push(`${strayReservations.length} active reservations of orders the orders database lacks${sample(strayReservations)}`);
  }
  if (repeatedHistory.length) problems.push(`${repeatedHistory.length} orders whose history repeats a status${sample(repeatedHistory)}`);
  if (missing.length) problems.push(`${missing.length} notifications missing${sample(missing)}`);
  if (doubled.length) problems.push(`${doubled.length} notifications recorded more than once${sample(doubled)}`);
  if (unexpected.length) problems.push(`${unexpected.length} notifications for a status the order never had${sample(unexpected)}`);

  return {
    orders: window.length,
    byStatus,
    lostOrders,
    uncancelled,
    pending,
    wrongHoldings,
    reservedUnits,
    expectedUnits,
    globalReservedUnits,
    globalExpectedUnits,
    unbalancedProducts,
    negativeStock,
    strayReservations,
    repeatedHistory,
    notifications: { expected: expectedJobs.size, recorded: recordedJobs.length, missing, doubled, unexpected },
    problems,
  };
}

/**
 * Reads the databases until the checks pass or `settleMs` is over; the last verdict, when it passed (undefined when it
 * never did) and the snapshot it was made on.
 */
export async function settle(
  databaseUrls: Record<SubgraphName, string>,
  seed: Known & { stock: ReadonlyMap<string, number> },
  known: Known,
  tally: Pick<LoadTally, 'placed' | 'cancelled' | 'usersCreated'>,
  settleMs: number,
): Promise<{ verdict: Verdict; seconds: number | undefined; snapshot: Snapshot }> {
  const started = Date.now();
  let last: { verdict: Verdict; snapshot: Snapshot } | undefined;
  let lastError: unknown;
  while (Date.now() - started < settleMs) {
    try {
      const snapshot = await readSnapshot(databaseUrls);
      last = { verdict: check(snapshot, seed, known, tally), snapshot };
      if (last.verdict.problems.length === 0) return { ...last, seconds: (Date.now() - started) / 1000 };
    } catch (error) {
      // The databases may be restarting; the next round reads again.
      lastError = error;
    }
    await sleep(2_000);
  }
  if (!last) throw new Error(`the databases could not be read for ${settleMs} ms: ${String(lastError)}`);
  return { ...last, seconds: undefined };
}
