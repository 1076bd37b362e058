import { createHash } from 'node:crypto';
import { readdir, readFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { tracer, tracingEnabled } from './telemetry.js';
import { DatabaseUnavailableError, isDatabaseUnavailable } from './database-unavailable.js';

/** Anything that runs one SQL statement with positional ($1, $2, ...) parameters. */
export interface Queryable {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

/** The statements of one transaction. */
export interface Transaction extends Queryable {
  /** Runs a script of several statements, with no parameters (a migration file). */
  exec(script: string): Promise<void>;
}

/**
 * A subgraph's database: a PostgreSQL server through a pool, or embedded PGlite.
 * Both speak the same SQL, so callers never branch on the kind.
 */
export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Whose database it is (e.g. `orders`), for messages; undefined when not given. */
  readonly name: string | undefined;
  /** Runs fn in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(script: string): Promise<void>;
  /** Statements run so far; tests and benchmarks read it to check batching. */
  readonly statementCount: number;
  /**
   * Resolves when the database answers `SELECT 1`, rejects (with a DatabaseUnavailableError when it is down) when
   * it does not. On a server it uses a connection of its own, so a busy pool does not delay it and a dead server
   * fails it within about a second: for /ready and for workers waiting for the database to come back.
   */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL of a server. When absent, embedded PGlite is used. */
  url?: string | undefined;
  /** PGlite data directory, or 'memory://' for a throwaway database. */
  dataDir?: string | undefined;
  poolSize?: number;
  /** Whose database it is (e.g. the subgraph's name), for error messages. */
  name?: string | undefined;
  /**
   * Longest wait for a pooled connection (connecting, or a free one when all are busy) before the statement fails
   * with DatabaseUnavailableError; default 5000. Without it, requests during an outage would hang.
   */
  connectionTimeoutMs?: number;
}

/** Deadlines of `ping`: connecting, then the statement. */
const PING_CONNECT_TIMEOUT_MS = 1_000;
const PING_QUERY_TIMEOUT_MS = 1_500;

/**
 * A client span per statement, only under a span already open (a request or a job), so the relay's polling
 * makes no traces of its own. The text has $n placeholders; quoted literals are blanked all the same.
 */
function traced<T>(system: 'postgres' | 'pglite', text: string, run: () => Promise<T>): Promise<T> {
  if (!tracingEnabled() || !trace.getSpan(context.active())) return run();
  const operation = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'SQL';
  const span = tracer().startSpan(operation, {
    kind: SpanKind.CLIENT,
    attributes: {
      'db.system.name': 'postgresql',
      'db.operation.name': operation,
      'db.query.text': text.replace(/'(?:[^']|'')*'/g, "'?'").slice(0, 2_000),
      ...(system === 'pglite' ? { 'db.client.embedded': true } : {}),
    },
  });
  return run().then(
    (value) => {
      span.end();
      return value;
    },
    (error: unknown) => {
      // The error's message may hold values (a duplicate key names it): only its kind goes on the span.
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
      span.end();
      throw error;
    },
  );
}

/**
 * A pool none of whose clients can crash the process with an 'error' event. The pool listens to idle clients only, and
 * pool.query with `once`: a server that ends a connection sends an error message and then closes the socket, and the
 * second error, or one on a client the pool has already discarded, would have no listener. Failures still reach the
 * statement that was running, and the pool replaces clients that failed.
 */
function listened(pool: pg.Pool): pg.Pool {
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

class PostgresDatabase implements Database {
  readonly kind = 'postgres';
  statementCount = 0;
  private readonly pool: pg.Pool;
  private probePool: pg.Pool | undefined;

  constructor(
    private readonly url: string,
    poolSize: number,
    readonly name: string | undefined,
    connectionTimeoutMs: number,
  ) {
    this.pool = listened(new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: connectionTimeoutMs }));
  }

  /** A failed connection becomes a DatabaseUnavailableError naming this database; other errors stay as they are. */
  private classify(error: unknown): unknown {
    return isDatabaseUnavailable(error) && !(error instanceof DatabaseUnavailableError) ? new DatabaseUnavailableError(this.name, error) : error;
  }

  async query<R extends object>(text: string, params?: readonly unknown[]): Promise<R[]> {
    this.statementCount++;
    try {
      // pool.query listens for the client's errors and discards a client whose statement failed.
      const result = await traced(this.kind, text, () => this.pool.query(text, params as unknown[] | undefined));
      return result.rows as R[];
    } catch (error) {
      throw this.classify(error);
    }
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.classify(error);
    }
    // While checked out the client is ours to listen to: a connection lost between statements (the server
    // restarted while fn awaited something else) is emitted as 'error', which would otherwise crash the process.
    let lost: unknown;
    const onError = (error: Error) => {
      lost ??= error;
    };
    client.on('error', onError);
    const run = async (text: string, params?: readonly unknown[]) => {
      this.statementCount++;
      try {
        return await traced(this.kind, text, () => client.query(text, params as unknown[] | undefined));
      } catch (error) {
        if (isDatabaseUnavailable(error)) lost ??= error;
        throw this.classify(error);
      }
    };
    const tx: Transaction = {
      query: async <R extends object>(text: string, params?: readonly unknown[]) => (await run(text, params)).rows as R[],
      // Without parameters node-postgres uses the simple query protocol, which runs several statements.
      exec: async (script: string) => {
        await run(script);
      },
    };
    try {
      await run('BEGIN');
      const value = await fn(tx);
      await run('COMMIT');
      return value;
    } catch (error) {
      // A lost connection has rolled back on the server; a failed ROLLBACK leaves the client unusable.
      if (lost === undefined) await client.query('ROLLBACK').catch((rollbackError: unknown) => (lost = rollbackError));
      throw this.classify(error);
    } finally {
      client.off('error', onError);
      // Released with the error, the pool discards the client instead of handing a dead connection to the next caller.
      client.release(lost === undefined ? undefined : lost instanceof Error ? lost : new Error(String(lost)));
    }
  }

  async exec(script: string): Promise<void> {
    this.statementCount++;
    try {
      await this.pool.query(script);
    } catch (error) {
      throw this.classify(error);
    }
  }

  async ping(): Promise<void> {
    this.probePool ??= this.newProbePool();
    try {
      await this.probePool.query('SELECT 1');
    } catch (error) {
      throw this.classify(error);
    }
  }

  /** One connection of its own for ping, with short deadlines. */
  private newProbePool(): pg.Pool {
    const pool = new pg.Pool({
      connectionString: this.url,
      max: 1,
      connectionTimeoutMillis: PING_CONNECT_TIMEOUT_MS,
      query_timeout: PING_QUERY_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
    });
    return listened(pool);
  }

  private closing: Promise<void> | undefined;

  /** Idempotent: a second close waits for the first. */
  close(): Promise<void> {
    this.closing ??= Promise.all([this.pool.end(), this.probePool?.end()]).then(() => undefined);
    return this.closing;
  }
}

class EmbeddedDatabase implements Database {
  readonly kind = 'pglite';
  statementCount = 0;

  constructor(
    private readonly db: PGlite,
    readonly name: string | undefined,
  ) {}

  async query<R extends object>(text: string, params?: readonly unknown[]): Promise<R[]> {
    this.statementCount++;
    return (await traced(this.kind, text, () => this.db.query<R>(text, params as unknown[] | undefined))).rows;
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) =>
      fn({
        query: async <R extends object>(text: string, params?: readonly unknown[]) => {
          this.statementCount++;
          return (await traced(this.kind, text, () => tx.query<R>(text, params as unknown[] | undefined))).rows;
        },
        exec: async (script: string) => {
          this.statementCount++;
          await tx.exec(script);
        },
      }),
    );
  }

  async exec(script: string): Promise<void> {
    this.statementCount++;
    await this.db.exec(script);
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  private closing: Promise<void> | undefined;

  /** Idempotent: a second close waits for the first. */
  close(): Promise<void> {
    this.closing ??= this.db.close();
    return this.closing;
  }
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url) {
    const db = new PostgresDatabase(options.url, options.poolSize ?? 10, options.name, options.connectionTimeoutMs ?? 5_000);
    try {
      await db.query('SELECT 1');
    } catch (error) {
      await db.close();
      throw error;
    }
    return db;
  }
  const dataDir = options.dataDir ?? 'memory://';
  if (!dataDir.startsWith('memory://')) await mkdir(dataDir, { recursive: true });
  const lite = await PGlite.create(dataDir);
  return new EmbeddedDatabase(lite, options.name);
}

/** Where embedded databases live when no directory is configured: `<repo>/.data/<name>`. */
export function defaultDataDir(name: string): string {
  return fileURLToPath(new URL(`../../../.data/${name}`, import.meta.url));
}

/** An applied migration whose file has changed since: start-up stops rather than run on a schema nobody wrote. */
export class MigrationChecksumError extends Error {
  override name = 'MigrationChecksumError';

  constructor(
    readonly version: string,
    readonly recorded: string,
    readonly actual: string,
    database: string | undefined,
  ) {
    super(
      `Migration ${version} was changed after it was applied to the ${database ? `${database} ` : ''}database ` +
        `(recorded checksum ${recorded.slice(0, 12)}, file now ${actual.slice(0, 12)}). An applied migration must not ` +
        'change: restore the file and put the change in a new migration.',
    );
  }
}

/** SHA-256 of a migration's text, line endings normalised (a checkout with CRLF is the same file). */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql.replace(/\r\n/g, '\n')).digest('hex');
}

/** Key of the advisory lock that migrations of a database take (advisory locks are per database). */
const MIGRATION_LOCK = 4242;

/**
 * Applies `NNN_name.sql` files from a directory in order, each once, each whole (a plpgsql body's `;` included) in
 * its own transaction, and records its SHA-256. A file that changed after it was applied stops start-up
 * (MigrationChecksumError); rows from before checksums were recorded get theirs on the first run. An advisory lock,
 * taken for the bookkeeping table as for each file, keeps replicas that start together from applying the same
 * migration twice or racing to create the table.
 */
export async function migrate(db: Database, directory: URL): Promise<string[]> {
  // Under the lock too: `IF NOT EXISTS` does not make two concurrent CREATE TABLEs safe (the loser fails on the
  // catalog's unique index, pg_type_typname_nsp_index), so replicas starting on a fresh database would.
  await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    );
    ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text`);
  });
  const dir = fileURLToPath(directory);
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  const applied: string[] = [];
  for (const file of files) {
    const version = path.basename(file, '.sql');
    const sql = await readFile(path.join(dir, file), 'utf8');
    const checksum = migrationChecksum(sql);
    const done = await db.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      const [row] = await tx.query<{ checksum: string | null }>('SELECT checksum FROM schema_migrations WHERE version = $1', [version]);
      if (row) {
        if (row.checksum === null) await tx.query('UPDATE schema_migrations SET checksum = $2 WHERE version = $1', [version, checksum]);
        else if (row.checksum !== checksum) throw new MigrationChecksumError(version, row.checksum, checksum, db.name);
        return false;
      }
      await tx.exec(sql);
      await tx.query('INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)', [version, checksum]);
      return true;
    });
    if (done) applied.push(version);
  }
  return applied;
}
