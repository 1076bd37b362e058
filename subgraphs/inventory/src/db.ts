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
