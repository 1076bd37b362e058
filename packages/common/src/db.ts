import { readdir, readFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { tracer, tracingEnabled } from './telemetry.js';

/** Anything that runs one SQL statement with positional ($1, $2, ...) parameters. */
export interface Queryable {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

/**
 * A subgraph's database: a PostgreSQL server through a pool, or embedded PGlite.
 * Both speak the same SQL, so callers never branch on the kind.
 */
export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs fn in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(script: string): Promise<void>;
  /** Statements run so far; tests and benchmarks read it to check batching. */
  readonly statementCount: number;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL of a server. When absent, embedded PGlite is used. */
  url?: string | undefined;
  /** PGlite data directory, or 'memory://' for a throwaway database. */
  dataDir?: string | undefined;
  poolSize?: number;
}

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

class PostgresDatabase implements Database {
  readonly kind = 'postgres';
  statementCount = 0;
  private readonly pool: pg.Pool;

  constructor(url: string, poolSize: number) {
    this.pool = new pg.Pool({ connectionString: url, max: poolSize });
    // An idle client losing its connection must not crash the process; the pool replaces it.
    this.pool.on('error', () => undefined);
  }

  async query<R extends object>(text: string, params?: readonly unknown[]): Promise<R[]> {
    this.statementCount++;
    const result = await traced(this.kind, text, () => this.pool.query(text, params as unknown[] | undefined));
    return result.rows as R[];
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const tx: Queryable = {
      query: async <R extends object>(text: string, params?: readonly unknown[]) => {
        this.statementCount++;
        return (await traced(this.kind, text, () => client.query(text, params as unknown[] | undefined))).rows as R[];
      },
    };
    try {
      await client.query('BEGIN');
      const value = await fn(tx);
      await client.query('COMMIT');
      return value;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async exec(script: string): Promise<void> {
    this.statementCount++;
    await this.pool.query(script);
  }

  private closing: Promise<void> | undefined;

  /** Idempotent: a second close waits for the first. */
  close(): Promise<void> {
    this.closing ??= this.pool.end();
    return this.closing;
  }
}

class EmbeddedDatabase implements Database {
  readonly kind = 'pglite';
  statementCount = 0;

  constructor(private readonly db: PGlite) {}

  async query<R extends object>(text: string, params?: readonly unknown[]): Promise<R[]> {
    this.statementCount++;
    return (await traced(this.kind, text, () => this.db.query<R>(text, params as unknown[] | undefined))).rows;
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) =>
      fn({
        query: async <R extends object>(text: string, params?: readonly unknown[]) => {
          this.statementCount++;
          return (await traced(this.kind, text, () => tx.query<R>(text, params as unknown[] | undefined))).rows;
        },
      }),
    );
  }

  async exec(script: string): Promise<void> {
    this.statementCount++;
    await this.db.exec(script);
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
    const db = new PostgresDatabase(options.url, options.poolSize ?? 10);
    await db.query('SELECT 1');
    return db;
  }
  const dataDir = options.dataDir ?? 'memory://';
  if (!dataDir.startsWith('memory://')) await mkdir(dataDir, { recursive: true });
  const lite = await PGlite.create(dataDir);
  return new EmbeddedDatabase(lite);
}

/** Where embedded databases live when no directory is configured: `<repo>/.data/<name>`. */
export function defaultDataDir(name: string): string {
  return fileURLToPath(new URL(`../../../.data/${name}`, import.meta.url));
}

/**
 * Applies `NNN_name.sql` files from a directory in order, each once, each in its
 * own transaction. An advisory lock keeps replicas that start together from
 * applying the same migration twice.
 */
export async function migrate(db: Database, directory: URL): Promise<string[]> {
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
  const dir = fileURLToPath(directory);
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  const applied: string[] = [];
  for (const file of files) {
    const version = path.basename(file, '.sql');
    const sql = await readFile(path.join(dir, file), 'utf8');
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(4242)');
      const rows = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [version]);
      if (rows.length > 0) return false;
      for (const statement of splitSql(sql)) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
      return true;
    });
    if (done) applied.push(version);
  }
  return applied;
}

/** Splits a migration script on semicolons at line ends; migrations keep one statement per `;\n`. */
function splitSql(sql: string): string[] {
  return sql
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter(Boolean);
}
