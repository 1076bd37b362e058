import type { Queryable } from '@shop/common';
import type { NotificationKind } from './notifications/jobs.js';
import type { TransportName } from './notifications/transport.js';

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

/** Whether the job with this id has already been delivered and recorded. */
export async function notificationRecorded(db: Queryable, jobId: string): Promise<boolean> {
  const rows = await db.query('SELECT 1 FROM notifications WHERE job_id = $1', [jobId]);
  return rows.length > 0;
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
