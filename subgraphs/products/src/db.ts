import type { DemoProduct, Queryable } from '@shop/common';

/** A row of the products table, as resolvers receive it. */
export interface ProductRow {
  id: string;
  sku: string;
  name: string;
  description: string;
  priceAmount: number;
  currency: string;
  category: string;
  weightGrams: number;
  createdAt: Date;
}

/** A product's writable columns. */
export type ProductFields = Omit<ProductRow, 'id' | 'createdAt'>;

/** Conditions of a listing, already validated; undefined means "any". */
export interface ProductListFilter {
  category?: string | undefined;
  minPrice?: number | undefined;
  maxPrice?: number | undefined;
  search?: string | undefined;
}

const COLUMNS = `id, sku, name, description, price_amount AS "priceAmount", currency, category,
  weight_grams AS "weightGrams", created_at AS "createdAt"`;

/** Products by id, in the order of `ids`, null where there is none: one statement. */
export async function productsByIds(db: Queryable, ids: readonly string[]): Promise<(ProductRow | null)[]> {
  const rows = await db.query<ProductRow>(`SELECT ${COLUMNS} FROM products WHERE id = ANY($1::uuid[])`, [ids]);
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => byId.get(id) ?? null);
}

/** Products by SKU (exact), in the order of `skus`, null where there is none: one statement. */
export async function productsBySkus(db: Queryable, skus: readonly string[]): Promise<(ProductRow | null)[]> {
  const rows = await db.query<ProductRow>(`SELECT ${COLUMNS} FROM products WHERE sku = ANY($1::text[])`, [skus]);
  const bySku = new Map(rows.map((row) => [row.sku, row]));
  return skus.map((sku) => bySku.get(sku) ?? null);
}

/** `%` and `_` are wildcards in LIKE; a user searching for "50%" means the characters. */
function likeContains(text: string): string {
  return `%${text.replace(/[\\%_]/g, '\\$&')}%`;
}

/**
 * A page of products in SKU order after a keyset position, with one extra row to
 * detect a next page. SKUs are unique, so the SKU alone is the keyset.
 */
export async function listProducts(
  db: Queryable,
  filter: ProductListFilter,
  limit: number,
  afterSku: string | undefined,
): Promise<ProductRow[]> {
  const params: unknown[] = [limit];
  const where: string[] = [];
  const param = (value: unknown) => `$${params.push(value)}`;
  if (filter.category !== undefined) where.push(`category = ${param(filter.category)}`);
  if (filter.minPrice !== undefined) where.push(`price_amount >= ${param(filter.minPrice)}`);
  if (filter.maxPrice !== undefined) where.push(`price_amount <= ${param(filter.maxPrice)}`);
  if (filter.search !== undefined) where.push(`name ILIKE ${param(likeContains(filter.search))}`);
  if (afterSku !== undefined) where.push(`sku > ${param(afterSku)}`);
  return db.query<ProductRow>(
    `SELECT ${COLUMNS} FROM products ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY sku LIMIT $1`,
    params,
  );
}

/** Inserts a product; the unique constraint on sku refuses a duplicate. */
export async function insertProduct(db: Queryable, id: string, fields: ProductFields): Promise<ProductRow> {
  const [row] = await db.query<ProductRow>(
    `INSERT INTO products (id, sku, name, description, price_amount, currency, category, weight_grams)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${COLUMNS}`,
    [id, fields.sku, fields.name, fields.description, fields.priceAmount, fields.currency, fields.category, fields.weightGrams],
  );
  return row!;
}

/** Changes the given fields of a product in one statement; null when there is no such product. */
export async function updateProduct(db: Queryable, id: string, changes: Partial<ProductFields>): Promise<ProductRow | null> {
  const [row] = await db.query<ProductRow>(
    `UPDATE products SET
       sku = COALESCE($2, sku),
       name = COALESCE($3, name),
       description = COALESCE($4, description),
       price_amount = COALESCE($5, price_amount),
       currency = COALESCE($6, currency),
       category = COALESCE($7, category),
       weight_grams = COALESCE($8, weight_grams)
     WHERE id = $1 RETURNING ${COLUMNS}`,
    [
      id,
      changes.sku ?? null,
      changes.name ?? null,
      changes.description ?? null,
      changes.priceAmount ?? null,
      changes.currency ?? null,
      changes.category ?? null,
      changes.weightGrams ?? null,
    ],
  );
  return row ?? null;
}

/** Inserts products that are not there yet, in one statement; returns how many were new. */
export async function insertProducts(db: Queryable, products: readonly DemoProduct[]): Promise<number> {
  const rows = await db.query(
    `INSERT INTO products (id, sku, name, description, price_amount, currency, category, weight_grams)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::int[])
     ON CONFLICT DO NOTHING RETURNING id`,
    [
      products.map((p) => p.id),
      products.map((p) => p.sku),
      products.map((p) => p.name),
      products.map((p) => p.description),
      products.map((p) => p.priceAmount),
      products.map((p) => p.currency),
      products.map((p) => p.category),
      products.map((p) => p.weightGrams),
    ],
  );
  return rows.length;
}
