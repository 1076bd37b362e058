import DataLoader from 'dataloader';
import type { Queryable } from '@shop/common';
import { ordersByIds, ordersOfUsers, statusHistories, type OrderFilter, type OrderRow, type OrderStatusChangeRow } from './db.js';

/** One user's page of orders: the user plus the field's (already validated) arguments. */
export interface UserOrdersKey extends OrderFilter {
  userId: string;
  /** Rows to fetch: the page size plus one to detect a next page. */
  limit: number;
}

/** The arguments users must share to be fetched together. */
function argumentsOf(key: UserOrdersKey): string {
  return JSON.stringify([key.limit, key.status ?? null, key.after?.createdAt ?? null, key.after?.id ?? null]);
}

/**
 * `User.orders` for many users in one request (an `_entities` call from the router): users asking with the
 * same arguments share one statement; differing arguments get one statement per distinct set.
 */
async function loadUserOrders(db: Queryable, keys: readonly UserOrdersKey[]): Promise<OrderRow[][]> {
  const groups = new Map<string, UserOrdersKey[]>();
  for (const key of keys) {
    const group = groups.get(argumentsOf(key));
    if (group) group.push(key);
    else groups.set(argumentsOf(key), [key]);
  }
  const pages = new Map<UserOrdersKey, OrderRow[]>();
  await Promise.all(
    [...groups.values()].map(async (group) => {
      const [{ limit, status, after }] = group as [UserOrdersKey, ...UserOrdersKey[]];
      const lists = await ordersOfUsers(db, group.map((k) => k.userId), limit, { status, after });
      group.forEach((key, i) => pages.set(key, lists[i] ?? []));
    }),
  );
  return keys.map((key) => pages.get(key) ?? []);
}

/** Per-request loaders: every entity lookup in one request is one statement. */
export function createLoaders(db: Queryable) {
  return {
    order: new DataLoader<string, OrderRow | null>((ids) => ordersByIds(db, ids)),
    statusHistory: new DataLoader<string, OrderStatusChangeRow[]>((ids) => statusHistories(db, ids)),
    userOrders: new DataLoader<UserOrdersKey, OrderRow[], string>((keys) => loadUserOrders(db, keys), {
      cacheKeyFn: (key) => `${key.userId}:${argumentsOf(key)}`,
    }),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
