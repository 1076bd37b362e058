import { randomUUID } from 'node:crypto';
import {
  DateTimeScalar,
  badInput,
  decodeCursor,
  isUniqueViolation,
  isUuid,
  pageSize,
  parseId,
  toConnection,
} from '@shop/common';
import { insertUser, listUsers } from './db.js';
import type { Resolvers } from './generated/resolvers.js';

// Deliberately simple: one @, no spaces, a dot in the domain. Real verification is a confirmation email.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function validateNewUser(input: { email: string; name: string }): { email: string; name: string } {
  const email = input.email.trim().toLowerCase();
  const name = input.name.trim();
  if (email.length > 254 || !EMAIL.test(email)) throw badInput('input.email', `"${input.email}" is not a valid email address`);
  if (name.length < 1 || name.length > 100) throw badInput('input.name', 'must be 1 to 100 characters');
  return { email, name };
}

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
    createUser: async (_parent, { input }, { db }) => {
      const user = validateNewUser(input);
      try {
        return await insertUser(db, { id: randomUUID(), ...user });
      } catch (error) {
        if (isUniqueViolation(error)) throw badInput('input.email', `${user.email} is already registered`);
        throw error;
      }
    },
  },
  User: {
    // A malformed id in a representation cannot match a row: answer null rather than fail the batch.
    __resolveReference: ({ id }, { loaders }) => (isUuid(id) ? loaders.user.load(id.toLowerCase()) : null),
  },
};
