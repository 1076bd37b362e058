import { randomUUID } from 'node:crypto';
import { ConfigError, hashPassword, readOptional, type Database, type Logger } from '@shop/common';
import { normalizeEmail, passwordProblem } from './accounts.js';
import { credentialsByEmail, insertUserIfAbsent, promoteToAdmin, type UserRole } from './db.js';

/** An administrator the operator asks for: ADMIN_EMAIL and ADMIN_PASSWORD, or the create-admin command. */
export interface AdminAccount {
  /** Normalized (trimmed, lower case). */
  email: string;
  password: string;
  name: string;
}

/** An email or password that does not meet the account rules; the message says which and why. */
export class AdminAccountError extends Error {
  override name = 'AdminAccountError';
}

export const DEFAULT_ADMIN_NAME = 'Administrator';

/** Checks an administrator's email and password by the rules every account follows. */
export function adminAccount(email: string, password: string, name = DEFAULT_ADMIN_NAME): AdminAccount {
  const normalized = normalizeEmail(email);
  if (normalized === undefined) throw new AdminAccountError(`"${email}" is not a valid email address`);
  const problem = passwordProblem(password);
  if (problem !== undefined) throw new AdminAccountError(`the password ${problem}`);
  const trimmed = name.trim();
  if (trimmed.length < 1 || trimmed.length > 100) throw new AdminAccountError('the name must be 1 to 100 characters');
  return { email: normalized, password, name: trimmed };
}

/** ADMIN_EMAIL and ADMIN_PASSWORD: both or neither (undefined); a bad value stops the start naming the variable. */
export function readAdminBootstrap(env: NodeJS.ProcessEnv): AdminAccount | undefined {
  const email = readOptional(env, 'ADMIN_EMAIL');
  // Not trimmed: a password's spaces are part of it.
  const password = env.ADMIN_PASSWORD === '' ? undefined : env.ADMIN_PASSWORD;
  if (email === undefined && password === undefined) return undefined;
  if (email === undefined) throw new ConfigError('ADMIN_PASSWORD is set without ADMIN_EMAIL: set both, or neither');
  if (password === undefined) throw new ConfigError('ADMIN_EMAIL is set without ADMIN_PASSWORD: set both, or neither');
  if (normalizeEmail(email) === undefined) throw new ConfigError(`ADMIN_EMAIL "${email}" is not a valid email address`);
  const problem = passwordProblem(password);
  if (problem !== undefined) throw new ConfigError(`ADMIN_PASSWORD ${problem}`);
  return adminAccount(email, password);
}

export type BootstrapOutcome = { created: true; id: string } | { created: false; id: string; role: UserRole };

/**
 * At start: creates the administrator when no account has its email; an existing account is left as it is (its
 * password and role too), so restarts and replicas starting together change nothing after the first. Logs what
 * happened, never the password.
 */
export async function ensureAdmin(db: Database, account: AdminAccount, log: Logger): Promise<BootstrapOutcome> {
  // Looked up first, so an ordinary restart costs no password hash.
  const existing = await credentialsByEmail(db, account.email);
  if (!existing) {
    const passwordHash = await hashPassword(account.password);
    const row = await insertUserIfAbsent(db, { id: randomUUID(), email: account.email, name: account.name, passwordHash, role: 'ADMIN' });
    if (row) {
      log.info({ email: account.email, userId: row.id }, 'ADMIN_EMAIL: created the administrator account');
      return { created: true, id: row.id };
    }
  }
  // Already there, or another replica inserted it between the lookup and the insert.
  const found = existing ?? (await credentialsByEmail(db, account.email));
  if (!found) throw new Error(`ADMIN_EMAIL: ${account.email} was neither inserted nor found`);
  if (found.role === 'ADMIN') {
    log.info({ email: account.email, userId: found.id }, 'ADMIN_EMAIL: the administrator account exists; left unchanged (password included)');
  } else {
    log.warn(
      { email: account.email, userId: found.id, role: found.role },
      'ADMIN_EMAIL names an existing account that is not an administrator; left unchanged: promote it with the create-admin command',
    );
  }
  return { created: false, id: found.id, role: found.role };
}

export type CreateAdminOutcome =
  | { outcome: 'created'; id: string }
  | { outcome: 'promoted'; id: string; previousRole: UserRole; passwordSet: boolean }
  | { outcome: 'already-admin'; id: string; passwordSet: boolean };

/**
 * The create-admin command: creates the account as an ADMIN, or makes the existing account with that email one.
 * An existing account keeps its password (it is never overwritten); one without a password gets the given one.
 */
export async function createOrPromoteAdmin(db: Database, account: AdminAccount): Promise<CreateAdminOutcome> {
  const passwordHash = await hashPassword(account.password);
  const row = await insertUserIfAbsent(db, { id: randomUUID(), email: account.email, name: account.name, passwordHash, role: 'ADMIN' });
  if (row) return { outcome: 'created', id: row.id };
  const before = await promoteToAdmin(db, account.email, passwordHash);
  // Deleted between the two statements: rare enough to ask for another run.
  if (!before) throw new AdminAccountError(`${account.email} was taken and then removed while this ran; run the command again`);
  if (before.previousRole === 'ADMIN') return { outcome: 'already-admin', id: before.id, passwordSet: !before.hadPassword };
  return { outcome: 'promoted', id: before.id, previousRole: before.previousRole, passwordSet: !before.hadPassword };
}
