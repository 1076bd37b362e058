import DataLoader from 'dataloader';
import type { Queryable } from '@shop/common';
import { notificationsOfUsers, usersByIds, type NotificationKeyset, type NotificationRow, type UserRow } from './db.js';

/** One user's page of notifications: the user plus the field's (already validated) arguments. */
export interface UserNotificationsKey {
  userId: string;
  /** Rows to fetch: the page size plus one to detect a next page. */
  limit: number;
  after: NotificationKeyset | undefined;
}

/** The arguments users must share to be fetched together. */
function argumentsOf(key: UserNotificationsKey): string {
  return JSON.stringify([key.limit, key.after?.sentAt ?? null, key.after?.id ?? null]);
}

/**
 * `User.notifications` for many users of one request: users asking with the same arguments share one
 * statement; each distinct set of arguments gets its own.
 */
async function loadUserNotifications(db: Queryable, keys: readonly UserNotificationsKey[]): Promise<NotificationRow[][]> {
  const groups = new Map<string, UserNotificationsKey[]>();
  for (const key of keys) {
    const group = groups.get(argumentsOf(key));
    if (group) group.push(key);
    else groups.set(argumentsOf(key), [key]);
  }
  const pages = new Map<UserNotificationsKey, NotificationRow[]>();
  await Promise.all(
    [...groups.values()].map(async (group) => {
      const [{ limit, after }] = group as [UserNotificationsKey, ...UserNotificationsKey[]];
      const lists = await notificationsOfUsers(db, group.map((k) => k.userId), limit, after);
      group.forEach((key, i) => pages.set(key, lists[i] ?? []));
    }),
  );
  return keys.map((key) => pages.get(key) ?? []);
}

/** Per-request loaders: every entity lookup in one request is one statement. */
export function createLoaders(db: Queryable) {
  return {
    user: new DataLoader<string, UserRow | null>((ids) => usersByIds(db, ids)),
    userNotifications: new DataLoader<UserNotificationsKey, NotificationRow[], string>(
      (keys) => loadUserNotifications(db, keys),
      { cacheKeyFn: (key) => `${key.userId}:${argumentsOf(key)}` },
    ),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
