import type { Queryable } from '@shop/common';

/** A row of the users table, as resolvers receive it. */
export interface UserRow {
  id: string;
  email: string;
  name: string;
  createdAt: Date;
}

const COLUMNS = 'id, email, name, created_at AS "createdAt"';

/** Users by id, in the order of `ids`, null where there is none: one statement. */
export async function usersByIds(db: Queryable, ids: readonly string[]): Promise<(UserRow | null)[]> {
  const rows = await db.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE id = ANY($1::uuid[])`, [ids]);
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => byId.get(id) ?? null);
}

/** A page of users after a (createdAt, id) keyset position, with one extra row to detect a next page. */
export async function listUsers(
  db: Queryable,
  limit: number,
  after: { createdAt: string; id: string } | undefined,
): Promise<UserRow[]> {
  if (!after) {
    return db.query<UserRow>(`SELECT ${COLUMNS} FROM users ORDER BY created_at, id LIMIT $1`, [limit]);
  }
  return db.query<UserRow>(
    `SELECT ${COLUMNS} FROM users WHERE (created_at, id) > ($2::timestamptz, $3::uuid)
     ORDER BY created_at, id LIMIT $1`,
    [limit, after.createdAt, after.id],
  );
}

/** Inserts a user; the unique index on lower(email) refuses a duplicate. */
export async function insertUser(db: Queryable, user: { id: string; email: string; name: string }): Promise<UserRow> {
  const [row] = await db.query<UserRow>(
    `INSERT INTO users (id, email, name) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
    [user.id, user.email, user.name],
  );
  return row!;
}

/** Inserts users that are not there yet, in one statement; returns how many were new. */
export async function insertUsers(db: Queryable, users: readonly UserRow[]): Promise<number> {
  const rows = await db.query(
    `INSERT INTO users (id, email, name, created_at)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])
     ON CONFLICT DO NOTHING RETURNING id`,
    [users.map((u) => u.id), users.map((u) => u.email), users.map((u) => u.name), users.map((u) => u.createdAt)],
  );
  return rows.length;
}
