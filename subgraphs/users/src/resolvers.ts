import { randomUUID } from 'node:crypto';
import {
  DateTimeScalar,
  badInput,
  decodeCursor,
  enqueueOutbox,
  hashPassword,
  requireAdmin,
  requireSelfOrAdmin,
  requireUser,
  unauthenticated,
  verifyPassword,
  isUniqueViolation,
  isUuid,
  pageSize,
  parseId,
  toConnection,
} from '@shop/common';
import { credentialsByEmail, insertUser, listUsers, type NotificationKeyset, type NotificationRow, type UserRow } from './db.js';
import type { Resolvers } from './generated/resolvers.js';
import { welcomeMessage } from './notifications/jobs.js';
import { normalizeEmail, passwordProblem } from './accounts.js';

function validateNewUser(input: { email: string; name: string; password?: string | null }) {
  const email = normalizeEmail(input.email);
  const name = input.name.trim();
  if (email === undefined) throw badInput('input.email', `"${input.email}" is not a valid email address`);
  if (name.length < 1 || name.length > 100) throw badInput('input.name', 'must be 1 to 100 characters');
  const password = input.password ?? null;
  const problem = password === null ? undefined : passwordProblem(password);
  if (problem !== undefined) throw badInput('input.password', problem);
  return { email, name, password };
}

const WRONG_CREDENTIALS = 'Email or password is incorrect.';

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
    me: (_parent, _args, { identity, loaders }) =>
      identity && identity.role !== 'SERVICE' ? loaders.user.load(identity.sub) : null,
    user: (_parent, { id }, context) => {
      requireUser(context);
      const userId = parseId('id', id);
      requireSelfOrAdmin(context, userId, 'read this account');
      return context.loaders.user.load(userId);
    },
    users: async (_parent, { first, after }, context) => {
      requireAdmin(context, 'list users');
      const { db } = context;
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
    createUser: async (_parent, { input }, { db, outbox, invalidator }) => {
      const { password, ...user } = validateNewUser(input);
      const passwordHash = password === null ? null : await hashPassword(password);
      let created: UserRow;
      try {
        // The welcome job is committed with the account: it cannot be lost, nor sent for an account that is not.
        created = await db.transaction(async (tx) => {
          const row = await insertUser(tx, { id: randomUUID(), ...user, passwordHash });
          await enqueueOutbox(tx, [welcomeMessage(row.id)]);
          return row;
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw badInput('input.email', `${user.email} is already registered`);
        throw error;
      }
      // A lookup of this id before it existed may be cached (as null).
      await invalidator?.invalidate([{ typename: 'User', id: created.id }]);
      outbox?.wake();
      return { ...created, openToCaller: true };
    },
    login: async (_parent, { email, password }, { db, tokens }) => {
      if (!tokens) throw new Error('login needs the users runtime (token signing)');
      const account = email.length <= 254 ? await credentialsByEmail(db, email.trim()) : null;
      // An unknown email costs the same scrypt work as a wrong password, so timing does not tell them apart.
      const ok = await verifyPassword(password, account?.passwordHash);
      if (!account || !ok) throw unauthenticated(WRONG_CREDENTIALS);
      const { passwordHash: _hash, ...user } = account;
      const { token, expiresAt } = await tokens.issue(user.id, user.role);
      return { token, expiresAt, user: { ...user, openToCaller: true as const } };
    },
  },
  User: {
    // A malformed id in a representation cannot match a row: answer null rather than fail the batch.
    __resolveReference: ({ id }, { loaders }) => (isUuid(id) ? loaders.user.load(id.toLowerCase()) : null),
    email: (user, _args, context) => {
      if (!user.openToCaller) requireSelfOrAdmin(context, user.id, "read this account's email");
      return user.email;
    },
    role: (user, _args, context) => {
      if (!user.openToCaller) requireSelfOrAdmin(context, user.id, "read this account's role");
      return user.role;
    },
    notifications: async (user, { first, after }, context) => {
      requireSelfOrAdmin(context, user.id, "read this account's notifications");
      const { loaders } = context;
      const limit = pageSize(first);
      const rows = await loaders.userNotifications.load({ userId: user.id, limit: limit + 1, after: notificationCursor(after) });
      return toConnection(rows, limit, notificationCursorOf);
    },
  },
};
