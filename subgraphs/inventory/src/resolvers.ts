import { badInput, isUuid, parseId, requireAdmin } from '@shop/common';
import { addStock } from './db.js';
import type { Resolvers } from './generated/resolvers.js';
import { shippingEstimate } from './shipping.js';

const MAX_RESTOCK = 1_000_000;

/** PostgreSQL numeric_value_out_of_range: the sum no longer fits the integer column. */
function isOutOfRange(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '22003';
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
      const required = 'price' in ref ? { price: ref.price, weightGrams: ref.weightGrams } : {};
      return { id: ref.id.toLowerCase(), ...required };
    },
    stock: ({ id, available }, _args, { loaders }) => available ?? loaders.available.load(id),
    inStock: async ({ id, available }, _args, { loaders }) => (available ?? (await loaders.available.load(id))) > 0,
    shippingEstimate: ({ price, weightGrams }) => (price && weightGrams != null ? shippingEstimate(price, weightGrams) : null),
  },
};
