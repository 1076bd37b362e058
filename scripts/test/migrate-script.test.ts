import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, readMigrationTargets } from '@shop/common';

const root = fileURLToPath(new URL('../..', import.meta.url));
const NAMES = ['users', 'products', 'orders', 'inventory'];
const urls = Object.fromEntries(NAMES.map((n) => [`${n.toUpperCase()}_DATABASE_URL`, `postgres://db.internal:5432/${n}`]));
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'migrate-script-'));
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe('migration targets', () => {
  it('in production, refuses embedded databases and names the variables to set', () => {
    const { ORDERS_DATABASE_URL: _orders, INVENTORY_DATABASE_URL: _inventory, ...some } = urls;
    expect(() => readMigrationTargets(NAMES, { NODE_ENV: 'production', ...some })).toThrow(ConfigError);
    expect(() => readMigrationTargets(NAMES, { NODE_ENV: 'production', ...some })).toThrow(
      /no PostgreSQL server for orders, inventory: set ORDERS_DATABASE_URL, INVENTORY_DATABASE_URL/,
    );
  });

  it('in production with every server named, and in development with none, gives each subgraph its database', () => {
    expect(readMigrationTargets(NAMES, { NODE_ENV: 'production', ...urls }).map((t) => [t.name, t.databaseUrl])).toEqual(
      NAMES.map((n) => [n, `postgres://db.internal:5432/${n}`]),
    );
    const dev = readMigrationTargets(NAMES, { USERS_DATA_DIR: '/tmp/u' });
    expect(dev.map((t) => t.databaseUrl)).toEqual([undefined, undefined, undefined, undefined]);
    expect(dev[0]!.dataDir).toBe('/tmp/u');
  });
});

describe('npm run migrate', () => {
  it('exits non-zero in production without database URLs, and creates no embedded database', { timeout: 60_000 }, async () => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, NODE_ENV: 'production' };
    for (const n of NAMES) env[`${n.toUpperCase()}_DATA_DIR`] = path.join(scratch, n);
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], { cwd: root, env });
    const failure = (await run.then(
      () => undefined,
      (error: unknown) => error,
    )) as { code?: number; stderr?: string } | undefined;
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(/^migrate: NODE_ENV=production and no PostgreSQL server for users, products, orders, inventory/);
    expect(await readdir(scratch)).toEqual([]);
  });
});
