import type { Queryable } from '@shop/common';

export const ORDER_STATUSES = ['PENDING', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'CANCELLED', 'REJECTED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** One line of an order, as resolvers receive it; amounts are in the order's currency. */
export interface OrderItemRow {
  productId: string;
  quantity: number;
  unitPriceAmount: number;
  currency: string;
}

/** A row of the orders table with all its lines, as resolvers receive it. */
export interface OrderRow {
  id: string;
  userId: string;
  status: OrderStatus;
  currency: string;
  items: OrderItemRow[];
  createdAt: Date;
  updatedAt: Date;
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

/** What inserting an order needs; the demo orders have this shape. */
export interface NewOrder {
  id: string;
  userId: string;
  status: OrderStatus;
  currency: string;
  createdAt: Date;
  lines: readonly { productId: string; quantity: number; unitPriceAmount: number }[];
}

/** Selects an order aliased `o` plus its lines. */
const ORDER_COLUMNS = `o.id, o.user_id AS "userId", o.status, o.currency,
  o.created_at AS "createdAt", o.updated_at AS "updatedAt", lines.items`;

// The lines of each order folded into one JSON array, so an order with all its lines is one row and any
// number of orders is one statement. No timestamps inside the JSON: they would come back as strings.
const WITH_LINES = `CROSS JOIN LATERAL (
  SELECT coalesce(json_agg(json_build_object(
    'productId', i.product_id,
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
 * Inserts the orders that are not there yet and the lines of those, in two statements; returns how many
 * rows (orders plus lines) were new. Run it in a transaction so orders never exist without their lines.
 */
export async function insertOrders(tx: Queryable, orders: readonly NewOrder[]): Promise<number> {
  const created = await tx.query<{ id: string }>(
    `INSERT INTO orders (id, user_id, status, currency, created_at, updated_at)
     SELECT id, user_id, status, currency, created_at, created_at
     FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[])
       AS n(id, user_id, status, currency, created_at)
     ON CONFLICT DO NOTHING RETURNING id`,
    [
      orders.map((o) => o.id),
      orders.map((o) => o.userId),
      orders.map((o) => o.status),
      orders.map((o) => o.currency),
      orders.map((o) => o.createdAt),
    ],
  );
  if (created.length === 0) return 0;
  const isNew = new Set(created.map((row) => row.id));
  const lines = orders
    .filter((o) => isNew.has(o.id))
    .flatMap((o) => o.lines.map((line, index) => ({ orderId: o.id, line: index + 1, ...line })));
  const [items] = await tx.query<{ n: number }>(
    `WITH inserted AS (
       INSERT INTO order_items (order_id, line, product_id, quantity, unit_price_amount)
       SELECT * FROM unnest($1::uuid[], $2::int[], $3::uuid[], $4::int[], $5::int[])
       ON CONFLICT DO NOTHING RETURNING 1
     )
     SELECT count(*)::int AS n FROM inserted`,
    [
      lines.map((l) => l.orderId),
      lines.map((l) => l.line),
      lines.map((l) => l.productId),
      lines.map((l) => l.quantity),
      lines.map((l) => l.unitPriceAmount),
    ],
  );
  return created.length + (items?.n ?? 0);
}
