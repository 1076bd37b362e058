import { randomUUID } from 'node:crypto';
import {
  DateTimeScalar,
  badInput,
  decodeCursor,
  enqueueOutbox,
  isUniqueViolation,
  isUuid,
  pageSize,
  parseId,
  toConnection,
} from '@shop/common';
import { insertUser, listUsers, type NotificationKeyset, type NotificationRow, type UserRow } from './db.js';
import type { Resolvers } from './generated/resolvers.js';
import { welcomeMessage } from './notifications/jobs.js';

// Deliberately simple: one @, no spaces, a dot in the domain. Real verification is a confirmation email.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function validateNewUser(input: { email: string; name: string }): { email: string; name: string } {
  const email = input.email.trim().toLowerCase();
  const name = input.name.trim();
  if (email.length > 254 || !EMAIL.test(email)) throw badInput('input.email', `"${input.email}" is not a valid email address`);
  if (name.length < 1 || name.length > 100) throw badInput('input.name', 'must be 1 to 100 characters');
  return { email, name };
}

/** Validates `after` of User.notifications: a cursor this field made holds a sentAt and an id. */
function notificationCursor(after: string | null | undefined): NotificationKeyset | undefined {
  const cursor = decodeCursor(after);
  if (!cursor) return undefined;
  const sentAt = typeof cursor.k === 'string' ? new Date(cursor.k) : undefined;
  if (!sentAt || Number.isNaN(sentAt.getTime()) || !isUuid(cursor.id)) {
    throw badInput('after', 'is not a cursor returned by this field (use pageInfo.endCursor)');
  }
  return { sentAt: sentAt.toISOString(), id: cursor.id.toLowerCase() };
}

const notificationCursorOf = (n: NotificationRow) => ({ k: n.sentAt.toISOString(), id: n.id });

export const resolvers: Resolvers = {
  DateTime: DateTimeScalar,
  Query: {
    user: (_parent, { id }, { loaders }) => loaders.user.load(parseId('id', id)),
    users: async (_parent, { first, after }, { db }) => {
      const limit = pageSize(first);
      const cursor = decodeCursor(after);
      if (cursor && (typeof cursor.k !== 'string' || !isUuid(cursor.id))) {
        throw badInput('after', 'is not a cursor returned by this field (use pageInfo.endCursor)');
      }
      const rows = await listUsers(db, limit + 1, cursor && { createdAt: String(cursor.k), id: cursor.id });
      return toConnection(rows, limit, (row) => ({ k: row.createdAt.toISOString(), id: row.id }));
    },
  },
  Mutation: {
    createUser: async (_parent, { input }, { db, outbox }) => {
      const user = validateNewUser(input);
      let created: UserRow;
      try {
        // The welcome job is committed with the account: it cannot be lost, nor sent for an account that is not.
        created = await db.transaction(async (tx) => {
          const row = await insertUser(tx, { id: randomUUID(), ...user });
          await enqueueOutbox(tx, [welcomeMessage(row.id)]);
          return row;
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw badInput('input.email', `${user.email} is already registered`);
        throw error;
      }
      outbox?.wake();
      return created;
    },
  },
  User: {
    // A malformed id in a representation cannot match a row: answer null rather than fail the batch.
    __resolveReference: ({ id }, { loaders }) => (isUuid(id) ? loaders.user.load(id.toLowerCase()) : null),
    notifications: async (user, { first, after }, { loaders }) => {
      const limit = pageSize(first);
      const rows = await loaders.userNotifications.load({ userId: user.id, limit: limit + 1, after: notificationCursor(after) });
      return toConnection(rows, limit, notificationCursorOf);
    },
  },
};
