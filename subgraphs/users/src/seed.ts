import { DEMO_ADMIN, DEMO_CUSTOMER_PASSWORD, demoShop, hashPassword, type Database } from '@shop/common';
import { countUsersWithPasswords, insertUsers, setMissingPasswords, type SeedUser } from './db.js';

/**
 * Loads the demo users and the administrator; running it again inserts nothing. The demo customers all
 * share one password, hashed once per run and reused (a salt per user would cost 100 scrypt hashes at
 * every start): acceptable for public demo credentials only, never for real accounts.
 * Announces nothing to the router's entity cache: it runs at start-up, after the migrations and before the
 * subgraph serves, so no answer about these rows can be cached yet.
 */
export async function seed(db: Database): Promise<{ inserted: number }> {
  const customers = demoShop().users;
  const customerIds = customers.map((u) => u.id);
  if ((await countUsersWithPasswords(db, [DEMO_ADMIN.id, ...customerIds])) === customers.length + 1) return { inserted: 0 };
  const [adminHash, customerHash] = await Promise.all([hashPassword(DEMO_ADMIN.password), hashPassword(DEMO_CUSTOMER_PASSWORD)]);
  const admin: SeedUser = {
    id: DEMO_ADMIN.id,
    email: DEMO_ADMIN.email,
    name: DEMO_ADMIN.name,
    // After every demo customer, so the first pages of `users` are the customers, as before.
    createdAt: new Date(Math.max(...customers.map((u) => u.createdAt.getTime())) + 3_600_000),
    passwordHash: adminHash,
    role: 'ADMIN',
  };
  const rows: SeedUser[] = [
    admin,
    ...customers.map((u) => ({ ...u, passwordHash: customerHash, role: 'CUSTOMER' as const })),
  ];
  const inserted = await insertUsers(db, rows);
  // Demo customers loaded before logins existed (an old .data/) get the demo password too.
  await setMissingPasswords(db, customerIds, customerHash);
  return { inserted };
}
