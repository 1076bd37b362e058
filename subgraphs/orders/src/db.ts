import { outboxColumns, type OutboxMessage, type Queryable } from '@shop/common';
import { EVENT_TIME_PATHS } from './messages.js';

export const ORDER_STATUSES = ['PENDING', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'CANCELLED', 'REJECTED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** One line of an order, as resolvers receive it; amounts are in the order's currency. */
export interface OrderItemRow {
  productId: string;
  /** The product's name when the order was placed; null on lines older than that column. */
  productName: string | null;
  quantity: number;
  unitPriceAmount: number;
  currency: string;
}

/** A row of the orders table with all its lines, as resolvers receive it. */
export interface OrderRow {
  id: string;
  userId: string;
  status: OrderStatus;
  statusReason: string | null;
  currency: string;
  items: OrderItemRow[];
  createdAt: Date;
  updatedAt: Date;
}

/** One entry of an order's status history. */
export interface OrderStatusChangeRow {
  status: OrderStatus;
  at: Date;
  reason: string | null;
}

/** A user as this subgraph knows one: only the id from an entity representation. */
export interface UserRef {
  id: string;
}

/** Position after which a newest-first page starts. */
export interface OrderKeyset {
  createdAt: string;
  id: string;
}

export interface OrderFilter {
  status?: OrderStatus | undefined;
  after?: OrderKeyset | undefined;
}

/** What inserting an order line needs. */
export interface NewOrderLine {
  productId: string;
  productName?: string | null | undefined;
  quantity: number;
  unitPriceAmount: number;
}

/** What inserting an existing order (demo data) needs: its lines and the history that led to its status. */
export interface NewOrder {
  id: string;
  userId: string;
  status: OrderStatus;
  statusReason?: string | null | undefined;
  currency: string;
  createdAt: Date;
  lines: readonly NewOrderLine[];
  history: readonly OrderStatusChangeRow[];
}

/** Selects an order aliased `o` plus its lines. */
const ORDER_COLUMNS = `o.id, o.user_id AS "userId", o.status, o.status_reason AS "statusReason", o.currency,
  o.created_at AS "createdAt", o.updated_at AS "updatedAt", lines.items`;

// The lines of each order folded into one JSON array, so an order with all its lines is one row and any
// number of orders is one statement. No timestamps inside the JSON: they would come back as strings.
const WITH_LINES = `CROSS JOIN LATERAL (
  SELECT coalesce(json_agg(json_build_object(
    'productId', i.product_id,
    'productName', i.product_name,
    'quantity', i.quantity,
    'unitPriceAmount', i.unit_price_amount,
    'currency', o.currency
  ) ORDER BY i.line), '[]'::json) AS items
  FROM order_items i
  WHERE i.order_id = o.id
) lines`;

/** Adds the optional status and keyset conditions on orders aliased `o`, numbering parameters after `params`. */
function filterConditions(filter: OrderFilter, params: unknown[]): string[] {
  const conditions: string[] = [];
  if (filter.status) {
    params.push(filter.status);
    conditions.push(`o.status = $${params.length}`);
  }
  if (filter.after) {
    params.push(filter.after.createdAt, filter.after.id);
    conditions.push(`(o.created_at, o.id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  return conditions;
}

/** Orders with their lines by id, in the order of `ids`, null where there is none: one statement. */
export async function ordersByIds(db: Queryable, ids: readonly string[]): Promise<(OrderRow | null)[]> {
  const rows = await db.query<OrderRow>(
    `SELECT ${ORDER_COLUMNS} FROM orders o ${WITH_LINES} WHERE o.id = ANY($1::uuid[])`,
    [ids],
  );
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => byId.get(id) ?? null);
}

/**
 * A newest-first page of all orders (or one user's), with their lines: one statement. Fetch one row more
 * than the page to learn whether a next page exists.
 */
export async function listOrders(
  db: Queryable,
  limit: number,
  filter: OrderFilter & { userId?: string | undefined },
): Promise<OrderRow[]> {
  const params: unknown[] = [limit];
  const conditions = filterConditions(filter, params);
  if (filter.userId) {
    params.push(filter.userId);
    conditions.push(`o.user_id = $${params.length}::uuid`);
  }
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
  // The page is cut first so only its orders' lines are aggregated.
  return db.query<OrderRow>(
    `SELECT ${ORDER_COLUMNS}
     FROM (SELECT * FROM orders o ${where} ORDER BY o.created_at DESC, o.id DESC LIMIT $1) o
     ${WITH_LINES}
     ORDER BY o.created_at DESC, o.id DESC`,
    params,
  );
}

/**
 * The first `limit` orders (newest first) of each of several users, with their lines: one statement
 * whatever the number of users. Returns one list per user, in the order of `userIds`.
 */
export async function ordersOfUsers(
  db: Queryable,
  userIds: readonly string[],
  limit: number,
  filter: OrderFilter,
): Promise<OrderRow[][]> {
  const params: unknown[] = [userIds, limit];
  const conditions = ['o.user_id = ANY($1::uuid[])', ...filterConditions(filter, params)];
  const rows = await db.query<OrderRow>(
    `SELECT ${ORDER_COLUMNS}
     FROM (
       SELECT o.*, row_number() OVER (PARTITION BY o.user_id ORDER BY o.created_at DESC, o.id DESC) AS rank
       FROM orders o
       WHERE ${conditions.join(' AND ')}
     ) o
     ${WITH_LINES}
     WHERE o.rank <= $2
     ORDER BY o.user_id, o.rank`,
    params,
  );
  const byUser = new Map<string, OrderRow[]>();
  for (const row of rows) {
    const list = byUser.get(row.userId);
    if (list) list.push(row);
    else byUser.set(row.userId, [row]);
  }
  return userIds.map((id) => byUser.get(id) ?? []);
}

/**
 * Inserts the orders that are not there yet with their lines and status history, in three statements; returns
 * how many rows (orders plus lines) were new. Run it in a transaction so orders never exist without their lines.
 */
export async function insertOrders(tx: Queryable, orders: readonly NewOrder[]): Promise<number> {
  const created = await tx.query<{ id: string }>(
    `INSERT INTO orders (id, user_id, status, status_reason, currency, created_at, updated_at)
     SELECT id, user_id, status, status_reason, currency, created_at, created_at
     FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
       AS n(id, user_id, status, status_reason, currency, created_at)
     ON CONFLICT DO NOTHING RETURNING id`,
    [
      orders.map((o) => o.id),
      orders.map((o) => o.userId),
      orders.map((o) => o.status),
      orders.map((o) => o.statusReason ?? null),
      orders.map((o) => o.currency),
      orders.map((o) => o.createdAt),
    ],
  );
  if (created.length === 0) return 0;
  const isNew = new Set(created.map((row) => row.id));
  const fresh = orders.filter((o) => isNew.has(o.id));
  const lines = fresh.flatMap((o) => o.lines.map((line, index) => ({ orderId: o.id, line: index + 1, ...line })));
  const [items] = await tx.query<{ n: number }>(
    `WITH inserted AS (
       INSERT INTO order_items (order_id, line, product_id, product_name, quantity, unit_price_amount)
       SELECT * FROM unnest($1::uuid[], $2::int[], $3::uuid[], $4::text[], $5::int[], $6::int[])
       ON CONFLICT DO NOTHING RETURNING 1
     )
     SELECT count(*)::int AS n FROM inserted`,
    [
      lines.map((l) => l.orderId),
      lines.map((l) => l.line),
      lines.map((l) => l.productId),
      lines.map((l) => l.productName ?? null),
      lines.map((l) => l.quantity),
      lines.map((l) => l.unitPriceAmount),
    ],
  );
  const history = fresh.flatMap((o) => o.history.map((change) => ({ orderId: o.id, ...change })));
  await tx.query(
    `INSERT INTO order_status_changes (order_id, status, reason, at)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])`,
    [history.map((h) => h.orderId), history.map((h) => h.status), history.map((h) => h.reason), history.map((h) => h.at)],
  );
  return created.length + (items?.n ?? 0);
}

/**
 * Names the lines of products in `names` that have no name yet (lines written before order_items.product_name
 * existed); returns how many lines were named.
 */
export async function nameOrderLines(tx: Queryable, names: ReadonlyMap<string, string>): Promise<number> {
  const [row] = await tx.query<{ n: number }>(
    `WITH named AS (
       UPDATE order_items i SET product_name = n.name
       FROM unnest($1::uuid[], $2::text[]) AS n(product_id, name)
       WHERE i.product_id = n.product_id AND i.product_name IS NULL
       RETURNING 1
     )
     SELECT count(*)::int AS n FROM named`,
    [[...names.keys()], [...names.values()]],
  );
  return row?.n ?? 0;
}

/** What placing an order writes: a PENDING order with the prices and names captured from the catalog. */
export interface PlacedOrder {
  id: string;
  userId: string;
  currency: string;
  lines: readonly Required<NewOrderLine>[];
}

/**
 * Inserts a new PENDING order, its lines and the first history entry; returns when it was placed (the
 * database's clock, as for every later status change).
 */
export async function insertPlacedOrder(tx: Queryable, order: PlacedOrder): Promise<Date> {
  const [row] = await tx.query<{ createdAt: Date }>(
    `INSERT INTO orders (id, user_id, status, currency) VALUES ($1, $2, 'PENDING', $3)
     RETURNING created_at AS "createdAt"`,
    [order.id, order.userId, order.currency],
  );
  const createdAt = row!.createdAt;
  await tx.query(
    `INSERT INTO order_items (order_id, line, product_id, product_name, quantity, unit_price_amount)
     SELECT $1, line, product_id, product_name, quantity, unit_price_amount
     FROM unnest($2::int[], $3::uuid[], $4::text[], $5::int[], $6::int[])
       AS n(line, product_id, product_name, quantity, unit_price_amount)`,
    [
      order.id,
      order.lines.map((_line, index) => index + 1),
      order.lines.map((l) => l.productId),
      order.lines.map((l) => l.productName),
      order.lines.map((l) => l.quantity),
      order.lines.map((l) => l.unitPriceAmount),
    ],
  );
  await tx.query(`INSERT INTO order_status_changes (order_id, status, at) VALUES ($1, 'PENDING', $2)`, [
    order.id,
    createdAt,
  ]);
  return createdAt;
}

/** A status change: the order moves from `expected` to `status`, for `reason`. */
export interface StatusChange {
  id: string;
  expected: OrderStatus;
  status: OrderStatus;
  reason: string | null;
}

/** The outbox messages a status change writes: `timed` ones get the change's time at EVENT_TIME_PATHS. */
export interface StatusChangeMessages {
  timed: readonly OutboxMessage[];
  others: readonly OutboxMessage[];
}

// A timed message's payload with the change's time written at each of EVENT_TIME_PATHS ($6, $7, ...).
const TIMED_PAYLOAD = EVENT_TIME_PATHS.reduce(
  (payload, _path, i) => `jsonb_set(${payload}, $${6 + i}::text[], changed.iso)`,
  'm.payload',
);

// One statement, so no BEGIN and COMMIT: its data-modifying CTEs commit together. The history entry and the outbox
// rows are selected from the UPDATE's RETURNING, so none is written when the guard on the status finds no row.
// The time is cut to milliseconds so a JavaScript Date holds the stored value exactly, and formatted as
// toISOString() formats it.
const CHANGE_ORDER_STATUS = `WITH changed AS (
  UPDATE orders SET status = $3, status_reason = $4, updated_at = date_trunc('milliseconds', now())
  WHERE id = $1 AND status = $2
  RETURNING id, status, status_reason, updated_at AS at,
    to_jsonb(to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) AS iso
), history AS (
  INSERT INTO order_status_changes (order_id, status, reason, at)
  SELECT id, status, status_reason, at FROM changed
), queued AS (
  INSERT INTO outbox (kind, target, name, key, payload)
  SELECT m.kind, m.target, m.name, m.key, CASE WHEN m.timed THEN ${TIMED_PAYLOAD} ELSE m.payload END
  FROM changed, jsonb_to_recordset($5::jsonb) AS m(kind text, target text, name text, key text, payload jsonb, timed boolean)
)
SELECT at FROM changed`;

/**
 * Moves an order from `expected` to `status`, appends the history entry and writes the outbox messages, in one
 * statement; nothing is written when another writer changed the order first (optimistic concurrency). Returns
 * when the change happened (the database's clock), or undefined when the order was no longer in `expected`.
 */
export async function changeOrderStatus(
  db: Queryable,
  change: StatusChange,
  messages: StatusChangeMessages,
): Promise<Date | undefined> {
  const rows = [
    ...messages.timed.map((m) => ({ ...outboxColumns(m), timed: true })),
    ...messages.others.map((m) => ({ ...outboxColumns(m), timed: false })),
  ];
  const [row] = await db.query<{ at: Date }>(CHANGE_ORDER_STATUS, [
    change.id,
    change.expected,
    change.status,
    change.reason,
    JSON.stringify(rows),
    ...EVENT_TIME_PATHS,
  ]);
  return row?.at;
}

/** The status histories of several orders, oldest entry first, in the order of `ids`: one statement. */
export async function statusHistories(db: Queryable, ids: readonly string[]): Promise<OrderStatusChangeRow[][]> {
  const rows = await db.query<OrderStatusChangeRow & { orderId: string }>(
    `SELECT order_id AS "orderId", status, at, reason FROM order_status_changes
     WHERE order_id = ANY($1::uuid[]) ORDER BY at, id`,
    [ids],
  );
  const byOrder = new Map<string, OrderStatusChangeRow[]>();
  for (const { orderId, ...change } of rows) {
    const list = byOrder.get(orderId);
    if (list) list.push(change);
    else byOrder.set(orderId, [change]);
  }
  return ids.map((id) => byOrder.get(id) ?? []);
}

/** The order an idempotency key was used for, and the hash of the request that placed it. */
export interface IdempotencyKeyRow {
  orderId: string;
  requestHash: string;
}

/** An idempotency key to record with the order placed under it. */
export interface NewIdempotencyKey {
  userId: string;
  key: string;
  requestHash: string;
  orderId: string;
}

/** The user's key if it was recorded less than `ttlHours` ago (an older one may be reused), else undefined. */
export async function findIdempotencyKey(
  db: Queryable,
  userId: string,
  key: string,
  ttlHours: number,
): Promise<IdempotencyKeyRow | undefined> {
  const [row] = await db.query<IdempotencyKeyRow>(
    `SELECT order_id AS "orderId", request_hash AS "requestHash" FROM order_idempotency_keys
     WHERE user_id = $1 AND key = $2 AND created_at >= now() - make_interval(hours => $3::int)`,
    [userId, key, ttlHours],
  );
  return row;
}

/**
 * Records the key for a new order, in the transaction that inserts the order (before it: the foreign key is checked
 * at commit), or takes over the key's expired row. Returns undefined when the key is now the new order's, or the row
 * that holds it. A transaction recording the same key at the same time makes this wait on the primary key until it
 * ends; once it has committed, its row is the one returned.
 */
export async function claimIdempotencyKey(
  tx: Queryable,
  claim: NewIdempotencyKey,
  ttlHours: number,
): Promise<IdempotencyKeyRow | undefined> {
  const claimed = await tx.query(
    `INSERT INTO order_idempotency_keys AS k (user_id, key, request_hash, order_id) VALUES ($1, $2, $3, $4)
     ON CONFLICT (user_id, key) DO UPDATE
       SET request_hash = EXCLUDED.request_hash, order_id = EXCLUDED.order_id, created_at = now()
       WHERE k.created_at < now() - make_interval(hours => $5::int)
     RETURNING 1`,
    [claim.userId, claim.key, claim.requestHash, claim.orderId, ttlHours],
  );
  if (claimed.length > 0) return undefined;
  // A statement of its own, so it sees the row the other transaction committed while this one waited.
  const [holder] = await tx.query<IdempotencyKeyRow>(
    `SELECT order_id AS "orderId", request_hash AS "requestHash" FROM order_idempotency_keys
     WHERE user_id = $1 AND key = $2`,
    [claim.userId, claim.key],
  );
  if (!holder) throw new Error(`idempotency key of user ${claim.userId} conflicted but is gone`);
  return holder;
}

/**
 * Deletes up to `batchSize` idempotency keys recorded more than `olderThanHours` ago, oldest first; returns how many.
 * Rows another transaction holds (a replica pruning too, a placement taking an expired key over) are skipped.
 */
export async function pruneIdempotencyKeys(db: Queryable, olderThanHours: number, batchSize = 500): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    `WITH expired AS (
       SELECT user_id, key FROM order_idempotency_keys
       WHERE created_at < now() - make_interval(hours => $1::int)
       ORDER BY created_at LIMIT $2
       FOR UPDATE SKIP LOCKED
     ), deleted AS (
       DELETE FROM order_idempotency_keys k USING expired e WHERE k.user_id = e.user_id AND k.key = e.key
       RETURNING 1
     )
     SELECT count(*)::int AS n FROM deleted`,
    [olderThanHours, batchSize],
  );
  return row?.n ?? 0;
}
