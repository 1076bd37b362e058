import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MigrationChecksumError, migrate, migrationChecksum } from '../src/db.js';
import { createTestDatabase, type TestDatabase } from '../src/testing.js';

const TABLE = `-- Accounts; two statements, one comment.
CREATE TABLE account (id int PRIMARY KEY, balance int NOT NULL, updated int NOT NULL DEFAULT 0);
INSERT INTO account (id, balance) VALUES (1, 10);
`;

// A plpgsql body has `;` inside it: split on `;` it would not run.
const TRIGGER = `CREATE FUNCTION touch_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated := OLD.updated + 1;
  IF NEW.balance < 0 THEN
    RAISE EXCEPTION 'balance below zero';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER account_touch BEFORE UPDATE ON account FOR EACH ROW EXECUTE FUNCTION touch_account();
`;

let database: TestDatabase;
let dir: string;
const url = () => pathToFileURL(`${dir}/`);

beforeEach(async () => {
  database = await createTestDatabase('migrate');
  dir = await mkdtemp(path.join(tmpdir(), 'migrations-'));
  await writeFile(path.join(dir, '001_account.sql'), TABLE);
  await writeFile(path.join(dir, '002_touch.sql'), TRIGGER);
});
afterEach(async () => {
  await database?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('migrate', () => {
  it('runs each file whole, a plpgsql function included, once, and records its checksum', async () => {
    expect(await migrate(database.db, url())).toEqual(['001_account', '002_touch']);
    await database.db.query('UPDATE account SET balance = 5 WHERE id = 1');
    expect(await database.db.query('SELECT balance, updated FROM account')).toEqual([{ balance: 5, updated: 1 }]);
    await expect(database.db.query('UPDATE account SET balance = -1')).rejects.toThrow(/balance below zero/);
    expect(await database.db.query('SELECT version, checksum FROM schema_migrations ORDER BY version')).toEqual([
      { version: '001_account', checksum: migrationChecksum(TABLE) },
      { version: '002_touch', checksum: migrationChecksum(TRIGGER) },
    ]);
    expect(await migrate(database.db, url())).toEqual([]);
  });

  it('rolls a failing file back whole', async () => {
    await writeFile(path.join(dir, '003_broken.sql'), 'CREATE TABLE half (id int);\nINSERT INTO nowhere VALUES (1);\n');
    await expect(migrate(database.db, url())).rejects.toThrow(/nowhere/);
    expect(await database.db.query(`SELECT to_regclass('half') AS t`)).toEqual([{ t: null }]);
    expect((await database.db.query('SELECT version FROM schema_migrations')).length).toBe(2);
  });

  it('stops when an applied file has changed, naming it', async () => {
    await migrate(database.db, url());
    await writeFile(path.join(dir, '001_account.sql'), TABLE.replace('10', '1000'));
    const failure = migrate(database.db, url());
    await expect(failure).rejects.toBeInstanceOf(MigrationChecksumError);
    await expect(failure).rejects.toThrow(/^Migration 001_account was changed after it was applied to the migrate database/);
    // Line endings alone are not a change.
    await writeFile(path.join(dir, '001_account.sql'), TABLE.replace(/\n/g, '\r\n'));
    expect(await migrate(database.db, url())).toEqual([]);
  });

  it('adds the checksum column to a database migrated before checksums and fills it on the first run', async () => {
    await database.db.exec(`CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
      ${TABLE}
      INSERT INTO schema_migrations (version) VALUES ('001_account');`);
    expect(await migrate(database.db, url())).toEqual(['002_touch']);
    expect(await database.db.query(`SELECT checksum FROM schema_migrations WHERE version = '001_account'`)).toEqual([
      { checksum: migrationChecksum(TABLE) },
    ]);
  });
});
