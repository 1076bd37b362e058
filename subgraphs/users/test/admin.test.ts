import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, createLogger, hashPassword, migrate, openDatabase, verifyPassword, type Database } from '@shop/common';
import { createTestDatabase, type TestDatabase } from '@shop/common/testing';
import { adminAccount, ensureAdmin, readAdminBootstrap } from '../src/admin.js';
import { credentialsByEmail, insertUser } from '../src/db.js';
import { users } from '../src/server.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const PASSWORD = 'operator-chosen-password-1';

/** A logger whose lines the test reads (pino writes JSON lines to the destination). */
function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('users-admin-test', 'info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

const userCount = async (db: Database, email: string) =>
  (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM users WHERE lower(email) = lower($1)', [email]))[0]!.n;

describe('ADMIN_EMAIL and ADMIN_PASSWORD', () => {
  it('are both or neither, and follow the account rules; errors name the variable', () => {
    expect(readAdminBootstrap({})).toBeUndefined();
    expect(readAdminBootstrap({ ADMIN_EMAIL: ' Ops@Example.COM ', ADMIN_PASSWORD: PASSWORD })).toEqual({
      email: 'ops@example.com',
      password: PASSWORD,
      name: 'Administrator',
    });
    expect(() => readAdminBootstrap({ ADMIN_EMAIL: 'ops@example.com' })).toThrow(/ADMIN_EMAIL is set without ADMIN_PASSWORD/);
    expect(() => readAdminBootstrap({ ADMIN_PASSWORD: PASSWORD })).toThrow(/ADMIN_PASSWORD is set without ADMIN_EMAIL/);
    expect(() => readAdminBootstrap({ ADMIN_EMAIL: 'not-an-email', ADMIN_PASSWORD: PASSWORD })).toThrow(/ADMIN_EMAIL "not-an-email" is not a valid/);
    expect(() => readAdminBootstrap({ ADMIN_EMAIL: 'ops@example.com', ADMIN_PASSWORD: 'short' })).toThrow(ConfigError);
    expect(() => readAdminBootstrap({ ADMIN_EMAIL: 'ops@example.com', ADMIN_PASSWORD: 'short' })).toThrow(/ADMIN_PASSWORD must be 12 to 200/);
  });
});

describe('the administrator created at start', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase('users_admin');
    await migrate(database.db, users.migrations);
  });
  afterAll(() => database?.drop());

  // Up to four scrypt hashes (128 MiB each, a few tenths of a second alone; much longer on a busy machine).
  it('is created once, as an ADMIN that can log in, even when replicas start together', { timeout: 90_000 }, async () => {
    const { db } = database;
    const account = adminAccount('first.admin@example.com', PASSWORD);
    const { log, lines } = recordingLogger();
    const outcomes = await Promise.all([ensureAdmin(db, account, log), ensureAdmin(db, account, log), ensureAdmin(db, account, log)]);
    expect(outcomes.filter((o) => o.created)).toHaveLength(1);
    expect(new Set(outcomes.map((o) => o.id)).size).toBe(1);
    expect(await userCount(db, account.email)).toBe(1);
    const row = await credentialsByEmail(db, account.email);
    expect(row?.role).toBe('ADMIN');
    expect(await verifyPassword(PASSWORD, row?.passwordHash)).toBe(true);
    expect(lines.filter((l) => l.msg === 'ADMIN_EMAIL: created the administrator account')).toHaveLength(1);
    // Never the password, in any line.
    expect(JSON.stringify(lines)).not.toContain(PASSWORD);

    // A restart with another password in ADMIN_PASSWORD changes nothing.
    const again = await ensureAdmin(db, adminAccount(account.email, 'a-different-password-2'), log);
    expect(again).toEqual({ created: false, id: row!.id, role: 'ADMIN' });
    expect((await credentialsByEmail(db, account.email))?.passwordHash).toBe(row?.passwordHash);
  });

  it("is the users subgraph's start-up step when ADMIN_EMAIL and ADMIN_PASSWORD are set, and nothing otherwise", async () => {
    const { db } = database;
    const { log, lines } = recordingLogger();
    await users.bootstrap!(db, {}, log);
    expect(lines).toEqual([]);
    await expect(users.bootstrap!(db, { ADMIN_EMAIL: 'boot@example.com' }, log)).rejects.toThrow(/ADMIN_EMAIL is set without ADMIN_PASSWORD/);
    await users.bootstrap!(db, { ADMIN_EMAIL: 'Boot@Example.com', ADMIN_PASSWORD: PASSWORD }, log);
    expect(await credentialsByEmail(db, 'boot@example.com')).toMatchObject({ email: 'boot@example.com', role: 'ADMIN', name: 'Administrator' });
  });

  it('leaves an existing customer with that email alone, and says how to promote it', async () => {
    const { db } = database;
    const passwordHash = await hashPassword('the-customers-own-password');
    const customer = await insertUser(db, { id: crypto.randomUUID(), email: 'taken@example.com', name: 'Taken', passwordHash });
    const { log, lines } = recordingLogger();
    expect(await ensureAdmin(db, adminAccount('TAKEN@example.com', PASSWORD), log)).toEqual({ created: false, id: customer.id, role: 'CUSTOMER' });
    const row = await credentialsByEmail(db, 'taken@example.com');
    expect(row).toMatchObject({ role: 'CUSTOMER', passwordHash });
    expect(lines).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringContaining('create-admin') }));
  });
});

describe('create-admin', () => {
  let database: TestDatabase | undefined;
  let dataDir: string | undefined;
  let env: Record<string, string>;

  beforeAll(async () => {
    if (process.env.TEST_DATABASE_URL) {
      database = await createTestDatabase('users_create_admin');
      env = { USERS_DATABASE_URL: database.url! };
    } else {
      // PGlite: a directory the command and then the test open in turn.
      dataDir = await mkdtemp(path.join(tmpdir(), 'shop-create-admin-'));
      env = { USERS_DATA_DIR: dataDir };
    }
  });
  afterAll(async () => {
    await database?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** Reads the database the command wrote (PGlite allows one process at a time, so it is opened after each run). */
  async function inspect<T>(fn: (db: Database) => Promise<T>): Promise<T> {
    if (database) return fn(database.db);
    const db = await openDatabase({ dataDir: dataDir!, name: 'users' });
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  }

  function createAdmin(args: string[], options: { env?: Record<string, string>; stdin?: string } = {}) {
    const child = spawn(process.execPath, ['--import', 'tsx', 'subgraphs/users/src/create-admin.ts', ...args], {
      cwd: root,
      env: { PATH: process.env.PATH, ...env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.end(options.stdin ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      child.on('exit', (code) => resolve({ code, stdout, stderr })),
    );
  }

  // Each run is a process that loads TypeScript through tsx (seconds each on a busy machine).
  it('refuses a bad email, a weak password and a missing --email with a clear message, touching nothing', { timeout: 90_000 }, async () => {
    const [badEmail, weak, noEmail] = await Promise.all([
      createAdmin(['--email', 'nobody-at-example'], { env: { ADMIN_PASSWORD: PASSWORD } }),
      createAdmin(['--email', 'weak@example.com'], { stdin: 'short\n' }),
      createAdmin([], { env: { ADMIN_PASSWORD: PASSWORD } }),
    ]);
    expect(badEmail).toMatchObject({ code: 2, stdout: '' });
    expect(badEmail.stderr).toContain('create-admin: "nobody-at-example" is not a valid email address');
    expect(weak).toMatchObject({ code: 2, stdout: '' });
    expect(weak.stderr).toContain('create-admin: the password must be 12 to 200 characters');
    expect(noEmail.code).toBe(2);
    expect(noEmail.stderr).toContain('--email is required');
    expect(noEmail.stderr).toContain('Usage: create-admin');
  });

  it('creates an administrator with the password from stdin, then promotes a customer keeping its password', { timeout: 180_000 }, async () => {
    const created = await createAdmin(['--email', 'Ops@Example.com', '--name', 'Operations'], { stdin: `${PASSWORD}\n` });
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^Created the administrator ops@example\.com \(id [0-9a-f-]{36}\)\.\n$/);
    await inspect(async (db) => {
      const row = await credentialsByEmail(db, 'ops@example.com');
      expect(row).toMatchObject({ role: 'ADMIN', name: 'Operations' });
      expect(await verifyPassword(PASSWORD, row?.passwordHash)).toBe(true);
    });

    // A customer's account becomes an ADMIN; the password given does not replace theirs.
    const customerHash = await hashPassword('the-customers-own-password');
    const customerId = await inspect(
      async (db) => (await insertUser(db, { id: crypto.randomUUID(), email: 'shopper@example.com', name: 'Shopper', passwordHash: customerHash })).id,
    );
    const promoted = await createAdmin(['--email', 'shopper@example.com'], { env: { ADMIN_PASSWORD: 'ignored-for-an-existing-account' } });
    expect(promoted.code).toBe(0);
    expect(promoted.stdout).toBe(`Made shopper@example.com (id ${customerId}, was CUSTOMER) an administrator; its password is unchanged.\n`);
    await inspect(async (db) => {
      expect(await credentialsByEmail(db, 'shopper@example.com')).toMatchObject({ id: customerId, role: 'ADMIN', passwordHash: customerHash });
      expect(await userCount(db, 'ops@example.com')).toBe(1);
    });

    const again = await createAdmin(['--email', 'ops@example.com'], { env: { ADMIN_PASSWORD: PASSWORD } });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('ops@example.com');
    expect(again.stdout).toContain('is already an administrator; its password is unchanged.');
  });
});
