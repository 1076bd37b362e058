import DataLoader from 'dataloader';
import type { Queryable } from '@shop/common';
import { usersByIds, type UserRow } from './db.js';

/** Per-request loaders: every entity lookup in one request is one statement. */
export function createLoaders(db: Queryable) {
  return {
    user: new DataLoader<string, UserRow | null>((ids) => usersByIds(db, ids)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
