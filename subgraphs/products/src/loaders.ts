import DataLoader from 'dataloader';
import type { Queryable } from '@shop/common';
import { productsByIds, productsBySkus, type ProductRow } from './db.js';

/** Per-request loaders: every product lookup in one request is one statement per key kind. */
export function createLoaders(db: Queryable) {
  return {
    productById: new DataLoader<string, ProductRow | null>((ids) => productsByIds(db, ids)),
    productBySku: new DataLoader<string, ProductRow | null>((skus) => productsBySkus(db, skus)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
