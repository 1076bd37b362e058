import { randomUUID } from 'node:crypto';
import {
  DateTimeScalar,
  badInput,
  decodeCursor,
  isUniqueViolation,
  isUuid,
  notFound,
  pageSize,
  parseId,
  requireAdmin,
  toConnection,
} from '@shop/common';
import type { Context } from './context.js';
import { insertProduct, listProducts, updateProduct, type ProductFields, type ProductListFilter, type ProductRow } from './db.js';
import type { InputMaybe, MoneyInput, ProductFilter, Resolvers, UpdateProductInput } from './generated/resolvers.js';

// Limits match the CHECK constraints in migrations/001_products.sql.
const SKU = /^[A-Za-z0-9._-]{1,64}$/;
const CURRENCY = /^[A-Z]{3}$/;
const MAX_SEARCH = 100;

function text(field: string, value: string, min: number, max: number): string {
  const trimmed = value.trim();
  if (trimmed.length < min || trimmed.length > max) {
    throw badInput(field, min > 0 ? `must be ${min} to ${max} characters` : `must be at most ${max} characters`);
  }
  return trimmed;
}

function validSku(value: string): string {
  const sku = value.trim();
  if (!SKU.test(sku)) throw badInput('input.sku', 'must be 1 to 64 letters, digits, "-", "_" or "."');
  return sku;
}

function validPrice(price: MoneyInput): Pick<ProductFields, 'priceAmount' | 'currency'> {
  if (!Number.isInteger(price.amount) || price.amount <= 0) {
    throw badInput('input.price.amount', `must be greater than 0 (minor units), got ${price.amount}`);
  }
  if (!CURRENCY.test(price.currency)) {
    throw badInput('input.price.currency', `must be a three-letter upper-case ISO-4217 code, got "${price.currency}"`);
  }
  return { priceAmount: price.amount, currency: price.currency };
}

function validWeight(grams: number): number {
  if (!Number.isInteger(grams) || grams <= 0) throw badInput('input.weightGrams', `must be greater than 0, got ${grams}`);
  return grams;
}

const validName = (value: string) => text('input.name', value, 1, 200);
const validDescription = (value: string) => text('input.description', value, 0, 5000);
const validCategory = (value: string) => text('input.category', value, 1, 50).toLowerCase();

/** Validates the fields an update sets; null and omitted fields are left out (they keep their value). */
function validChanges(input: UpdateProductInput): Partial<ProductFields> {
  const changes: Partial<ProductFields> = {};
  if (input.sku != null) changes.sku = validSku(input.sku);
  if (input.name != null) changes.name = validName(input.name);
  if (input.description != null) changes.description = validDescription(input.description);
  if (input.price != null) Object.assign(changes, validPrice(input.price));
  if (input.category != null) changes.category = validCategory(input.category);
  if (input.weightGrams != null) changes.weightGrams = validWeight(input.weightGrams);
  return changes;
}

function validFilter(filter: InputMaybe<ProductFilter> | undefined): ProductListFilter {
  if (!filter) return {};
  const { minPrice, maxPrice } = filter;
  if (minPrice != null && minPrice < 0) throw badInput('filter.minPrice', `must be 0 or more, got ${minPrice}`);
  if (maxPrice != null && maxPrice < 0) throw badInput('filter.maxPrice', `must be 0 or more, got ${maxPrice}`);
  if (minPrice != null && maxPrice != null && minPrice > maxPrice) {
    throw badInput('filter.minPrice', `must not be above filter.maxPrice (${minPrice} > ${maxPrice})`);
  }
  const search = filter.search?.trim();
  if (search && search.length > MAX_SEARCH) throw badInput('filter.search', `must be at most ${MAX_SEARCH} characters`);
  const category = filter.category?.trim().toLowerCase();
  // A blank category or search box is the usual way a frontend says "any".
  return {
    category: category || undefined,
    minPrice: minPrice ?? undefined,
    maxPrice: maxPrice ?? undefined,
    search: search || undefined,
  };
}

/** Maps the one violation a valid input can still hit (a taken SKU) to a client error. */
async function guardSku<T>(sku: string | undefined, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isUniqueViolation(error)) throw badInput('input.sku', `${sku ?? 'the SKU'} is already used by another product`);
    throw error;
  }
}

/** Tells the router's entity cache that a committed write changed this product, before the mutation answers. */
async function changed(context: Context, row: ProductRow): Promise<ProductRow> {
  await context.invalidator?.invalidate([{ typename: 'Product', id: row.id }]);
  return row;
}

export const resolvers: Resolvers = {
  DateTime: DateTimeScalar,
  Query: {
    product: (_parent, { id, sku }, { loaders }) => {
      if (id != null && sku != null) throw badInput('sku', 'pass either id or sku, not both');
      if (id != null) return loaders.productById.load(parseId('id', id));
      if (sku != null) return loaders.productBySku.load(sku);
      throw badInput('id', 'pass either id or sku');
    },
    products: async (_parent, { filter, first, after }, { db }) => {
      const limit = pageSize(first);
      const cursor = decodeCursor(after);
      if (cursor && typeof cursor.k !== 'string') {
        throw badInput('after', 'is not a cursor returned by this field (use pageInfo.endCursor)');
      }
      const rows = await listProducts(db, validFilter(filter), limit + 1, cursor && String(cursor.k));
      return toConnection(rows, limit, (row) => ({ k: row.sku, id: row.id }));
    },
  },
  Mutation: {
    createProduct: async (_parent, { input }, context) => {
      requireAdmin(context, 'add products');
      const { db } = context;
      const fields: ProductFields = {
        sku: validSku(input.sku),
        name: validName(input.name),
        description: validDescription(input.description),
        ...validPrice(input.price),
        category: validCategory(input.category),
        weightGrams: validWeight(input.weightGrams),
      };
      return changed(context, await guardSku(fields.sku, () => insertProduct(db, randomUUID(), fields)));
    },
    updateProduct: async (_parent, { id, input }, context) => {
      requireAdmin(context, 'change products');
      const { db } = context;
      const productId = parseId('id', id);
      const changes = validChanges(input);
      const row = await guardSku(changes.sku, () => updateProduct(db, productId, changes));
      if (!row) throw notFound('Product', productId);
      return changed(context, row);
    },
  },
  Product: {
    price: (row) => ({ amount: row.priceAmount, currency: row.currency }),
    // The router sends whichever key it planned with. A malformed value cannot match a
    // row: answer null rather than fail the whole batch.
    __resolveReference: (ref, { loaders }) => {
      if ('id' in ref) return typeof ref.id === 'string' && isUuid(ref.id) ? loaders.productById.load(ref.id.toLowerCase()) : null;
      return typeof ref.sku === 'string' ? loaders.productBySku.load(ref.sku) : null;
    },
  },
};
