import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApolloServer } from '@apollo/server';
import { Queue, Worker } from 'bullmq';
import { pino } from 'pino';
import {
  OutboxRelay,
  createLogger,
  createRedis,
  currentRequestId,
  graphqlRequestListener,
  listen,
  withJobContext,
  type Listening,
  type Logger,
} from '../src/index.js';
import { createTestDatabase, createTestRedis, graphql, type TestDatabase, type TestRedis } from '../src/testing.js';

type Line = Record<string, unknown>;

function capture(service: string): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Line);
      done();
    },
  });
  return { log: createLogger(service, 'debug', sink), lines };
}

// The process logger: what resolvers, data access and background code log with, not the per-request child.
const processLog = capture('log-context-test');
let database: TestDatabase;
let relay: OutboxRelay;
let http: Listening;

beforeAll(async () => {
  // No outbox table here: every relay run fails, and the first failure's warning shows whose context it ran in. The
  // relay is not started: its first run is one a request woke.
  database = await createTestDatabase('log_context');
  relay = new OutboxRelay({ db: database.db, queues: {}, log: processLog.log, intervalMs: 20 });
  const apollo = new ApolloServer({
    typeDefs: 'type Query { echo(word: String!): String! }',
    resolvers: {
      Query: {
        echo: async (_: unknown, { word }: { word: string }) => {
          await sleep(5);
          processLog.log.info({ word }, 'resolver at work');
          await database.db.query('SELECT 1');
          processLog.log.debug('after the database');
          relay.wake();
          return word;
        },
      },
    },
  });
  await apollo.start();
  http = await listen(
    graphqlRequestListener(apollo, { log: processLog.log, corsOrigins: [], bodyLimitBytes: 10_000, context: async () => ({}) }),
    0,
    '127.0.0.1',
  );
});
afterAll(async () => {
  await relay?.stop();
  await http?.close();
  await database?.drop();
});

describe('log context of a request', () => {
  it('adds the request id to every line any createLogger logger writes while handling it, and to no other', async () => {
    const requestIds = ['ctx-a', 'ctx-b', 'ctx-c'];
    // Concurrent requests: each line must carry its own request's id.
    const results = await Promise.all(
      requestIds.map((id) => graphql(http.url, 'query ($w: String!) { echo(word: $w) }', { w: id }, { 'x-request-id': id })),
    );
    expect(results.map((r) => r.data)).toEqual(requestIds.map((id) => ({ echo: id })));
    for (const id of requestIds) {
      const lines = processLog.lines.filter((line) => line.word === id || line.requestId === id);
      expect(lines.map((line) => line.msg).sort()).toEqual(['after the database', 'graphql request', 'resolver at work']);
      for (const line of lines) expect(line.requestId).toBe(id);
    }
    // The id appears once per line (a child binding and the context together would repeat it).
    const raw = JSON.stringify(processLog.lines.find((line) => line.msg === 'resolver at work'));
    expect(raw.match(/"requestId"/g)).toHaveLength(1);
  });

  it('keeps background work a request woke (the outbox relay) out of that request', async () => {
    await graphql(http.url, 'query { echo(word: "wake") }', undefined, { 'x-request-id': 'ctx-wake' });
    const relayLines = () => processLog.lines.filter((line) => line.msg.startsWith('outbox relay is failing'));
    await expect.poll(() => relayLines().length, { timeout: 5_000 }).toBe(1);
    expect(relayLines()[0]).not.toHaveProperty('requestId');
  });

  it('binds the request id on a logger not made by createLogger', async () => {
    const lines: Line[] = [];
    const plain = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(JSON.parse(chunk.toString()) as Line), done()) }));
    const apollo = new ApolloServer({ typeDefs: 'type Query { ok: Boolean }', resolvers: { Query: { ok: () => true } } });
    await apollo.start();
    const server = await listen(
      graphqlRequestListener(apollo, { log: plain, corsOrigins: [], bodyLimitBytes: 10_000, context: async () => ({}) }),
      0,
      '127.0.0.1',
    );
    try {
      await graphql(server.url, '{ ok }', undefined, { 'x-request-id': 'plain-1' });
      expect(lines.find((line) => line.msg === 'graphql request')).toMatchObject({ requestId: 'plain-1' });
    } finally {
      await server.close();
      await apollo.stop();
    }
  });
});

describe('a request without an async log context (asyncLogContext: false)', () => {
  it("carries the request id on its own logger's lines only, and runs outside any log context", async () => {
    const service = capture('bound-test');
    const seen: (string | undefined)[] = [];
    const apollo = new ApolloServer<{ log: Logger }>({
      typeDefs: 'type Query { echo(word: String!): String! }',
      resolvers: {
        Query: {
          echo: async (_: unknown, { word }: { word: string }, context: { log: Logger }) => {
            await sleep(5);
            seen.push(currentRequestId());
            context.log.info({ word }, 'request logger');
            service.log.info({ word }, 'process logger');
            return word;
          },
        },
      },
    });
    await apollo.start();
    const server = await listen(
      graphqlRequestListener(apollo, {
        log: service.log,
        corsOrigins: [],
        bodyLimitBytes: 10_000,
        asyncLogContext: false,
        context: async ({ log }) => ({ log }),
      }),
      0,
      '127.0.0.1',
    );
    try {
      const ids = ['bound-a', 'bound-b'];
      await Promise.all(ids.map((id) => graphql(server.url, 'query ($w: String!) { echo(word: $w) }', { w: id }, { 'x-request-id': id })));
      expect(seen).toEqual([undefined, undefined]);
      for (const id of ids) {
        expect(service.lines.filter((line) => line.requestId === id).map((line) => line.msg).sort()).toEqual(['graphql request', 'request logger']);
        expect(service.lines.find((line) => line.word === id && line.msg === 'process logger')).not.toHaveProperty('requestId');
      }
    } finally {
      await server.close();
      await apollo.stop();
    }
  });
});

describe('log context of a queue job', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await createTestRedis('log_context');
  });
  afterAll(() => redis?.cleanup());

  it('names the job, its queue and the request that queued it on every line the processor logs', async () => {
    const producer = createRedis(redis.url, processLog.log);
    const consumer = createRedis(redis.url, processLog.log, { blocking: true });
    const queue = new Queue('ctx-work', { connection: producer, prefix: redis.prefix });
    const worker = new Worker(
      'ctx-work',
      withJobContext(async (job) => {
        await sleep(5);
        processLog.log.info({ step: job.name }, 'job at work');
        return job.name;
      }),
      { connection: consumer, prefix: redis.prefix },
    );
    try {
      await queue.add('from-request', { requestId: 'ctx-job-req' }, { jobId: 'job-1' });
      await queue.add('from-nowhere', { n: 1 }, { jobId: 'job-2' });
      await expect.poll(() => processLog.lines.filter((line) => line.msg === 'job at work').length, { timeout: 5_000 }).toBe(2);
      const byStep = (step: string) => processLog.lines.find((line) => line.msg === 'job at work' && line.step === step);
      expect(byStep('from-request')).toMatchObject({ jobId: 'job-1', queue: 'ctx-work', requestId: 'ctx-job-req' });
      expect(byStep('from-nowhere')).toMatchObject({ jobId: 'job-2', queue: 'ctx-work' });
      expect(byStep('from-nowhere')).not.toHaveProperty('requestId');
    } finally {
      await worker.close();
      await queue.close();
      consumer.disconnect();
      producer.disconnect();
    }
  });
});
