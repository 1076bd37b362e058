import { badInput, isUuid, parseId, requireAdmin } from '@shop/common';
import { addStock } from './db.js';
import type { Resolvers } from './generated/resolvers.js';
import { shippingEstimate } from './shipping.js';

const MAX_RESTOCK = 1_000_000;

/** PostgreSQL numeric_value_out_of_range: the sum no longer fits the integer column. */
function isOutOfRange(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '22003';
}

const MAX_INT = 2 ** 31 - 1;

/**
 * The `@requires` inputs come from the representation, which the router fills from products; sent by anyone else
 * they may be anything. Out of range: BAD_USER_INPUT on that entity (not an Int overflow in the estimate).
 */
function checkedPrice(price: unknown): { amount: number; currency: string } | null {
  if (price === null || price === undefined) return null;
  const { amount, currency } = price as { amount?: unknown; currency?: unknown };
  if (typeof amount !== 'number' || !Number.isInteger(amount) || amount < 0 || amount > MAX_INT || typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) {
    throw badInput('representations.price', `must be { amount: an integer 0 to ${MAX_INT}, currency: a three-letter code }`);
  }
  return { amount, currency };
}

function checkedWeight(weightGrams: unknown): number | null {
  if (weightGrams === null || weightGrams === undefined) return null;
  if (typeof weightGrams !== 'number' || !Number.isInteger(weightGrams) || weightGrams < 0 || weightGrams > MAX_INT) {
    throw badInput('representations.weightGrams', `must be an integer from 0 to ${MAX_INT}`);
  }
  return weightGrams;
}

export const resolvers: Resolvers = {
  Mutation: {
    restock: async (_parent, { productId, quantity }, context) => {
      requireAdmin(context, 'restock products');
      const { db, loaders, runtime } = context;
      const id = parseId('productId', productId);
      if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_RESTOCK) {
        throw badInput('quantity', `must be between 1 and ${MAX_RESTOCK}, got ${quantity}`);
      }
      let available: number;
      try {
        available = await addStock(db, id, quantity);
      } catch (error) {
        if (isOutOfRange(error)) throw badInput('quantity', 'would take the stock beyond what can be stored');
        throw error;
      }
      await runtime?.invalidator.invalidate([{ typename: 'Product', id }]);
      // Later reads of this product's stock in the same request must see the new level.
      loaders.available.clear(id).prime(id, available);
      return { id, available };
    },
  },
  Product: {
    // No SQL here: stock is loaded only when a stock field is selected, so a fetch that
    // only wants shippingEstimate (computed from the representation) costs nothing.
    __resolveReference: (ref) => {
      if (typeof ref.id !== 'string' || !isUuid(ref.id)) return null;
      let required = {};
      try {
        if ('price' in ref) required = { price: checkedPrice(ref.price), weightGrams: checkedWeight(ref.weightGrams) };
      } catch (error) {
        // Rejected rather than thrown: thrown, it would fail the whole `_entities` list instead of this entity.
        return Promise.reject(error as Error);
      }
      return { id: ref.id.toLowerCase(), ...required };
    },
    stock: ({ id, available }, _args, { loaders }) => available ?? loaders.available.load(id),
    inStock: async ({ id, available }, _args, { loaders }) => (available ?? (await loaders.available.load(id))) > 0,
    shippingEstimate: ({ price, weightGrams }) => (price && weightGrams != null ? shippingEstimate(price, weightGrams) : null),
  },
};
