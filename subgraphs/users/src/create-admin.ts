/**
 * `npm run create-admin -- --email ops@example.com` (in an image: `node subgraphs/users/dist/create-admin.js --email ...`):
 * creates that account as an ADMIN, or makes the existing account with that email one (its password is kept). The
 * password comes from ADMIN_PASSWORD or the first line of stdin, never from the command line (shell history, `ps`).
 * Uses the users database of USERS_DATABASE_URL (or USERS_DATA_DIR, as the subgraph does) and migrates it first.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ConfigError, defaultDataDir, prepareDatabase, readOptional, readUrl } from '@shop/common';
import { AdminAccountError, DEFAULT_ADMIN_NAME, adminAccount, createOrPromoteAdmin, type CreateAdminOutcome } from './admin.js';
import { users } from './server.js';

const USAGE = `Usage: create-admin --email <email> [--name <name>]
The password is read from ADMIN_PASSWORD, or else from the first line of stdin (12 to 200 characters).`;

class UsageError extends Error {
  override name = 'UsageError';
}

/** The first line of stdin, without its line break. */
async function readPasswordFromStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Password (12 to 200 characters; it is shown as you type): ');
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  try {
    for await (const line of lines) return line;
  } finally {
    lines.close();
  }
  throw new UsageError('no password: set ADMIN_PASSWORD or write it on stdin');
}

function describe(email: string, result: CreateAdminOutcome): string {
  switch (result.outcome) {
    case 'created':
      return `Created the administrator ${email} (id ${result.id}).`;
    case 'promoted':
      return `Made ${email} (id ${result.id}, was ${result.previousRole}) an administrator; ${
        result.passwordSet ? 'it had no password and now has the one given' : 'its password is unchanged'
      }.`;
    case 'already-admin':
      return `${email} (id ${result.id}) is already an administrator; ${
        result.passwordSet ? 'it had no password and now has the one given' : 'its password is unchanged'
      }.`;
  }
}

async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<string> {
  let values: { email?: string; name?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { email: { type: 'string' }, name: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return USAGE;
  if (!values.email) throw new UsageError('--email is required');
  const password = env.ADMIN_PASSWORD ? env.ADMIN_PASSWORD : await readPasswordFromStdin();
  // Checked before the database is opened: a typo costs nothing.
  const account = adminAccount(values.email, password, values.name ?? DEFAULT_ADMIN_NAME);
  const databaseUrl = readUrl(env, 'USERS_DATABASE_URL', ['postgres:', 'postgresql:']);
  const dataDir = readOptional(env, 'USERS_DATA_DIR') ?? defaultDataDir('users');
  const { db } = await prepareDatabase(users, { databaseUrl, dataDir });
  try {
    return describe(account.email, await createOrPromoteAdmin(db, account));
  } finally {
    await db.close();
  }
}

run(process.argv.slice(2), process.env).then(
  (message) => {
    process.stdout.write(`${message}\n`);
  },
  (error: unknown) => {
    const known = error instanceof UsageError || error instanceof AdminAccountError || error instanceof ConfigError;
    process.stderr.write(`create-admin: ${error instanceof Error ? error.message : String(error)}\n`);
    if (error instanceof UsageError) process.stderr.write(`${USAGE}\n`);
    process.exitCode = known ? 2 : 1;
  },
);
