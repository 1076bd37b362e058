import DataLoader from 'dataloader';
import type { Queryable } from '@shop/common';
import { availableByIds } from './db.js';

/** Per-request loaders: the stock of every product in one request is one statement. */
export function createLoaders(db: Queryable) {
  return {
    available: new DataLoader<string, number>((ids) => availableByIds(db, ids)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
