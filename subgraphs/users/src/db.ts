import type { Queryable } from '@shop/common';
import type { NotificationKind } from './notifications/jobs.js';
import type { TransportName } from './notifications/transport.js';

/** A row of the users table, as resolvers receive it. */
export interface UserRow {
  id: string;
  email: string;
  name: string;
  createdAt: Date;
  role: UserRole;
  /** Set on the account createUser just made or login just proved: the caller may read it back without a token. */
  openToCaller?: true;
}

export type UserRole = 'CUSTOMER' | 'ADMIN';

const COLUMNS = 'id, email, name, created_at AS "createdAt", role';

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

/** Inserts a customer; the unique index on lower(email) refuses a duplicate. */
export async function insertUser(
  db: Queryable,
  user: { id: string; email: string; name: string; passwordHash: string | null },
): Promise<UserRow> {
  const [row] = await db.query<UserRow>(
    `INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
    [user.id, user.email, user.name, user.passwordHash],
  );
  return row!;
}

/**
 * Inserts an account unless one with its email exists already (the unique index on lower(email) decides, so replicas
 * racing to insert the same one make one row). Returns the new row, or null when the email was taken.
 */
export async function insertUserIfAbsent(
  db: Queryable,
  user: { id: string; email: string; name: string; passwordHash: string; role: UserRole },
): Promise<UserRow | null> {
  const [row] = await db.query<UserRow>(
    `INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`,
    [user.id, user.email, user.name, user.passwordHash, user.role],
  );
  return row ?? null;
}

/**
 * Makes the account with this email an ADMIN. Its password is kept; only an account without one (it could not log
 * in) gets `passwordHash`. Returns what it was before, or null when there is no such account.
 */
export async function promoteToAdmin(
  db: Queryable,
  email: string,
  passwordHash: string,
): Promise<{ id: string; previousRole: UserRole; hadPassword: boolean } | null> {
  const [row] = await db.query<{ id: string; previousRole: UserRole; hadPassword: boolean }>(
    `WITH before AS (
       SELECT id, role, password_hash IS NOT NULL AS had_password FROM users WHERE lower(email) = lower($1) FOR UPDATE
     )
     UPDATE users u SET role = 'ADMIN', password_hash = COALESCE(u.password_hash, $2)
     FROM before WHERE u.id = before.id
     RETURNING u.id, before.role AS "previousRole", before.had_password AS "hadPassword"`,
    [email, passwordHash],
  );
  return row ?? null;
}

/** A user to seed, with the hash of their password and their role. */
export interface SeedUser {
  id: string;
  email: string;
  name: string;
  createdAt: Date;
  passwordHash: string;
  role: UserRole;
}

/** Inserts users that are not there yet, in one statement; returns how many were new. */
export async function insertUsers(db: Queryable, users: readonly SeedUser[]): Promise<number> {
  const rows = await db.query(
    `INSERT INTO users (id, email, name, created_at, password_hash, role)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[])
     ON CONFLICT DO NOTHING RETURNING id`,
    [
      users.map((u) => u.id),
      users.map((u) => u.email),
      users.map((u) => u.name),
      users.map((u) => u.createdAt),
      users.map((u) => u.passwordHash),
      users.map((u) => u.role),
    ],
  );
  return rows.length;
}

/** How many of these users exist with a password, so a repeated seed run skips hashing passwords. */
export async function countUsersWithPasswords(db: Queryable, ids: readonly string[]): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM users WHERE id = ANY($1::uuid[]) AND password_hash IS NOT NULL',
    [ids],
  );
  return row?.n ?? 0;
}

/** Gives these users a password hash where they have none (demo users seeded before logins existed). */
export async function setMissingPasswords(db: Queryable, ids: readonly string[], passwordHash: string): Promise<void> {
  await db.query('UPDATE users SET password_hash = $2 WHERE id = ANY($1::uuid[]) AND password_hash IS NULL', [ids, passwordHash]);
}

/** What login needs: the account with its password hash, by email (case-insensitive). */
export async function credentialsByEmail(
  db: Queryable,
  email: string,
): Promise<(UserRow & { passwordHash: string | null }) | null> {
  const [row] = await db.query<UserRow & { passwordHash: string | null }>(
    `SELECT ${COLUMNS}, password_hash AS "passwordHash" FROM users WHERE lower(email) = lower($1)`,
    [email],
  );
  return row ?? null;
}

/** A recorded notification, as resolvers receive it. */
export interface NotificationRow {
  id: string;
  userId: string;
  kind: NotificationKind;
  subject: string;
  text: string;
  sentAt: Date;
  transport: TransportName;
}

/** What the worker records after a notification went out. */
export interface NewNotification {
  id: string;
  jobId: string;
  userId: string;
  kind: NotificationKind;
  recipient: string;
  subject: string;
  text: string;
  html: string;
  transport: TransportName;
  messageId: string;
}

/** Position after which a newest-first page of notifications starts. */
export interface NotificationKeyset {
  sentAt: string;
  id: string;
}

const NOTIFICATION_COLUMNS =
  'n.id, n.user_id AS "userId", n.kind, n.subject, n.text_body AS text, n.sent_at AS "sentAt", n.transport';

/**
 * What a notification job needs first, in one statement: whether its job id was already recorded, and its
 * recipient (null when there is no such user).
 */
export async function notificationTarget(db: Queryable, jobId: string, userId: string): Promise<{ recorded: boolean; user: UserRow | null }> {
  const [row] = await db.query<{ recorded: boolean; user: UserRow | null }>(
    `SELECT EXISTS (SELECT 1 FROM notifications WHERE job_id = $1) AS recorded,
            (SELECT row_to_json(u) FROM (SELECT ${COLUMNS} FROM users WHERE id = $2::uuid) u) AS "user"`,
    [jobId, userId],
  );
  const user = row?.user ?? null;
  return { recorded: row?.recorded === true, user: user && { ...user, createdAt: new Date(user.createdAt) } };
}

/** Records a delivered notification; a second record for the same job id is a no-op. Returns whether it was new. */
export async function recordNotification(db: Queryable, n: NewNotification): Promise<boolean> {
  const rows = await db.query(
    `INSERT INTO notifications (id, job_id, user_id, kind, recipient, subject, text_body, html_body, transport, message_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (job_id) DO NOTHING RETURNING id`,
    [n.id, n.jobId, n.userId, n.kind, n.recipient, n.subject, n.text, n.html, n.transport, n.messageId],
  );
  return rows.length > 0;
}

/**
 * The first `limit` notifications (newest first) of each of several users: one statement whatever the number
 * of users. A lateral join with LIMIT reads only each user's page from the (user_id, sent_at, id) index,
 * where a window function would rank every notification the users ever had. One list per user, in order.
 */
export async function notificationsOfUsers(
  db: Queryable,
  userIds: readonly string[],
  limit: number,
  after: NotificationKeyset | undefined,
): Promise<NotificationRow[][]> {
  const params: unknown[] = [userIds, limit];
  let keyset = '';
  if (after) {
    params.push(after.sentAt, after.id);
    keyset = 'AND (n.sent_at, n.id) < ($3::timestamptz, $4::uuid)';
  }
  const rows = await db.query<NotificationRow>(
    `SELECT ${NOTIFICATION_COLUMNS}
     FROM unnest($1::uuid[]) AS u(id)
     CROSS JOIN LATERAL (
       SELECT * FROM notifications n
       WHERE n.user_id = u.id ${keyset}
       ORDER BY n.sent_at DESC, n.id DESC
       LIMIT $2
     ) n
     ORDER BY n.user_id, n.sent_at DESC, n.id DESC`,
    params,
  );
  const byUser = new Map<string, NotificationRow[]>();
  for (const row of rows) {
    const list = byUser.get(row.userId);
    if (list) list.push(row);
    else byUser.set(row.userId, [row]);
  }
  return userIds.map((id) => byUser.get(id) ?? []);
}
