import type { DemoProduct, Queryable } from '@shop/common';

/**
 * A Product as this subgraph's resolvers receive it: the key, the product fields the
 * router sent along for @requires (absent when not requested), and the stock level when
 * it is already known (after a restock). Otherwise stock is loaded only if asked for.
 */
export interface ProductStockRef {
  id: string;
  available?: number;
  price?: { amount: number; currency: string } | null;
  weightGrams?: number | null;
}

/** Units available per product id, in the order of `ids`, 0 where there is no row: one statement. */
export async function availableByIds(db: Queryable, ids: readonly string[]): Promise<number[]> {
  const rows = await db.query<{ productId: string; available: number }>(
    'SELECT product_id AS "productId", available FROM stock WHERE product_id = ANY($1::uuid[])',
    [ids],
  );
  const byId = new Map(rows.map((row) => [row.productId, row.available]));
  return ids.map((id) => byId.get(id) ?? 0);
}

/** Adds units to a product's stock, creating its row on first delivery, in one statement; returns the new level. */
export async function addStock(db: Queryable, productId: string, quantity: number): Promise<number> {
  const [row] = await db.query<{ available: number }>(
    `INSERT INTO stock AS s (product_id, available) VALUES ($1, $2)
     ON CONFLICT (product_id) DO UPDATE SET available = s.available + EXCLUDED.available, updated_at = now()
     RETURNING available`,
    [productId, quantity],
  );
  return row!.available;
}

/** Inserts stock rows for products that have none yet, in one statement; returns how many were new. */
export async function insertStock(db: Queryable, products: readonly Pick<DemoProduct, 'id' | 'stock'>[]): Promise<number> {
  const rows = await db.query(
    `INSERT INTO stock (product_id, available)
     SELECT * FROM unnest($1::uuid[], $2::int[])
     ON CONFLICT DO NOTHING RETURNING product_id`,
    [products.map((p) => p.id), products.map((p) => p.stock)],
  );
  return rows.length;
}

/** One product of an order to reserve. */
export interface ReservationLine {
  productId: string;
  quantity: number;
}

/** A product an order wants more of than there is. */
export interface Shortage {
  productId: string;
  requested: number;
  available: number;
}

/** What deciding on an order did; `repeated` when the order had been decided before (nothing changed). */
export type ReservationDecision =
  | { outcome: 'reserved' }
  | { outcome: 'rejected'; reason: string; shortages: Shortage[] }
  | { outcome: 'repeated' };

/** Names the products short of stock; at most the first five, so the reason stays short. */
function shortageReason(shortages: readonly Shortage[]): string {
  const named = shortages
    .slice(0, 5)
    .map((s) => `product ${s.productId} (${s.requested} requested, ${s.available} available)`)
    .join(', ');
  return `Not enough stock: ${named}${shortages.length > 5 ? ` and ${shortages.length - 5} more` : ''}`;
}

/**
 * Reserves all lines of an order or none, in the caller's transaction. The outcome row goes in first, so a
 * second `reserve` for the same order waits for the first to commit and then does nothing. Stock rows are
 * locked in product id order, so concurrent orders never deadlock, and checked before any is decremented.
 */
export async function reserveStock(
  tx: Queryable,
  orderId: string,
  lines: readonly ReservationLine[],
): Promise<ReservationDecision> {
  const claimed = await tx.query(
    `INSERT INTO reservation_outcomes (order_id, outcome) VALUES ($1, 'reserved')
     ON CONFLICT (order_id) DO NOTHING RETURNING order_id`,
    [orderId],
  );
  if (claimed.length === 0) return { outcome: 'repeated' };
  const sorted = [...lines].sort((a, b) => (a.productId < b.productId ? -1 : a.productId > b.productId ? 1 : 0));
  const ids = sorted.map((line) => line.productId);
  const rows = await tx.query<{ productId: string; available: number }>(
    `SELECT product_id AS "productId", available FROM stock
     WHERE product_id = ANY($1::uuid[]) ORDER BY product_id FOR UPDATE`,
    [ids],
  );
  const available = new Map(rows.map((row) => [row.productId, row.available]));
  const shortages = sorted
    .map((line) => ({ productId: line.productId, requested: line.quantity, available: available.get(line.productId) ?? 0 }))
    .filter((s) => s.requested > s.available);
  if (shortages.length > 0) {
    const reason = shortageReason(shortages);
    await tx.query(`UPDATE reservation_outcomes SET outcome = 'rejected', reason = $2 WHERE order_id = $1`, [
      orderId,
      reason,
    ]);
    return { outcome: 'rejected', reason, shortages };
  }
  const quantities = sorted.map((line) => line.quantity);
  await tx.query(
    `UPDATE stock s SET available = s.available - n.quantity, updated_at = now()
     FROM unnest($1::uuid[], $2::int[]) AS n(product_id, quantity)
     WHERE s.product_id = n.product_id`,
    [ids, quantities],
  );
  await tx.query(
    `INSERT INTO reservations (order_id, product_id, quantity)
     SELECT $1, product_id, quantity FROM unnest($2::uuid[], $3::int[]) AS n(product_id, quantity)`,
    [orderId, ids, quantities],
  );
  return { outcome: 'reserved' };
}

/** What releasing an order gave back: the units, and the products whose stock they went back to. */
export interface Release {
  units: number;
  productIds: string[];
}

/**
 * Gives an order's reserved units back, once, in the caller's transaction. Releasing an order that was never
 * decided marks it cancelled, so a `reserve` arriving later does nothing. A release repeated after one that
 * gave the units back gives nothing again but still names the order's products: the first run may have
 * committed and died before it announced the change (rejected and cancelled orders hold no reservations).
 */
export async function releaseStock(tx: Queryable, orderId: string): Promise<Release> {
  const tombstone = await tx.query(
    `INSERT INTO reservation_outcomes (order_id, outcome, reason) VALUES ($1, 'cancelled', 'released before it was reserved')
     ON CONFLICT (order_id) DO NOTHING RETURNING order_id`,
    [orderId],
  );
  if (tombstone.length > 0) return { units: 0, productIds: [] };
  const released = await tx.query(
    `UPDATE reservation_outcomes SET released_at = now()
     WHERE order_id = $1 AND outcome = 'reserved' AND released_at IS NULL RETURNING order_id`,
    [orderId],
  );
  if (released.length === 0) {
    const held = await tx.query<{ productId: string }>('SELECT product_id AS "productId" FROM reservations WHERE order_id = $1', [
      orderId,
    ]);
    return { units: 0, productIds: held.map((row) => row.productId) };
  }
  // Locks in the same order as reserveStock, so a release never deadlocks with reservations.
  await tx.query(
    `SELECT s.product_id FROM stock s JOIN reservations r ON r.product_id = s.product_id
     WHERE r.order_id = $1 ORDER BY s.product_id FOR UPDATE OF s`,
    [orderId],
  );
  const restored = await tx.query<{ productId: string; quantity: number }>(
    `UPDATE stock s SET available = s.available + r.quantity, updated_at = now()
     FROM reservations r
     WHERE r.order_id = $1 AND s.product_id = r.product_id
     RETURNING r.product_id AS "productId", r.quantity`,
    [orderId],
  );
  return {
    units: restored.reduce((sum, row) => sum + row.quantity, 0),
    productIds: restored.map((row) => row.productId),
  };
}
