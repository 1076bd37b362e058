import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ADMIN, OUTBOX_TABLE_SQL, demoShop } from '@shop/common';
import {
  ADMIN,
  countStatements,
  createTestRedis,
  graphql,
  startTestSubgraph,
  type GraphQLResponse,
  type TestRedis,
  type TestSubgraph,
} from '@shop/common/testing';
import { users } from '../src/server.js';

interface UserPage {
  edges: { node: { id: string } }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

let subgraph: TestSubgraph;
let redis: TestRedis;
const shop = demoShop();

beforeAll(async () => {
  // The outbox relays welcome jobs to Redis: a key prefix of this file's own.
  redis = await createTestRedis('users');
  subgraph = await startTestSubgraph(users, {
    seed: true,
    env: { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix, NOTIFICATION_WORKER_IN_PROCESS: 'false' },
  });
});
afterAll(async () => {
  await subgraph?.close();
  await redis?.cleanup();
});

const outboxRows = async () =>
  subgraph.db.query<{ key: string; payload: unknown }>("SELECT key, payload FROM outbox WHERE name = 'welcome' ORDER BY id");

describe('users subgraph', () => {
  it('seeds the demo users once, however often it runs', async () => {
    expect(await users.seed(subgraph.db)).toEqual({ inserted: 0 });
    const [row] = await subgraph.db.query<{ n: number }>('SELECT count(*)::int AS n FROM users');
    // The demo customers and the administrator.
    expect(row?.n).toBe(shop.users.length + 1);
  });

  it('finds a user by id and answers null for an unknown one', async () => {
    const known = shop.users[3]!;
    const res = await graphql(subgraph.url, 'query($a: ID!, $b: ID!) { a: user(id: $a) { id name email createdAt } b: user(id: $b) { id } }', {
      a: known.id,
      b: '00000000-0000-4000-8000-000000000000',
    }, subgraph.as(ADMIN));
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({
      a: { id: known.id, name: known.name, email: known.email, createdAt: known.createdAt.toISOString() },
      b: null,
    });
  });

  it('refuses a malformed id with BAD_USER_INPUT naming the argument', async () => {
    const res = await graphql(subgraph.url, '{ user(id: "42") { id } }', undefined, subgraph.as(ADMIN));
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
    expect(res.errors?.[0]?.message).toMatch(/^id: /);
  });

  it('pages through users with cursors', async () => {
    const query = 'query($after: String) { users(first: 40, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }';
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const res: GraphQLResponse<{ users: UserPage }> = await graphql<{ users: UserPage }>(subgraph.url, query, { after }, subgraph.as(ADMIN));
      expect(res.errors).toBeUndefined();
      const page: UserPage = res.data!.users;
      seen.push(...page.edges.map((e) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    // The administrator was created after the demo customers.
    expect(seen).toEqual([...shop.users.map((u) => u.id), DEMO_ADMIN.id]);
  });

  it.each([
    ['first: -1', 'first'],
    ['first: 101', 'first'],
    ['after: "not-a-cursor"', 'after'],
  ])('refuses users(%s) with BAD_USER_INPUT', async (args, field) => {
    const res = await graphql(subgraph.url, `{ users(${args}) { edges { cursor } } }`, undefined, subgraph.as(ADMIN));
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });

  it('creates a user and refuses the same email in another case', async () => {
    const mutation = 'mutation($input: CreateUserInput!) { createUser(input: $input) { id email name } }';
    const created = await graphql<{ createUser: { id: string; email: string; name: string } }>(subgraph.url, mutation, {
      input: { email: 'New.Person@Example.com', name: ' New Person ' },
    });
    expect(created.errors).toBeUndefined();
    expect(created.data?.createUser).toMatchObject({ email: 'new.person@example.com', name: 'New Person' });
    const id = created.data!.createUser.id;
    // The welcome job was committed with the user.
    expect(await outboxRows()).toEqual([{ key: `welcome-${id}`, payload: { userId: id } }]);

    const before = await subgraph.db.query<{ n: number }>('SELECT count(*)::int AS n FROM users');
    const duplicate = await graphql(subgraph.url, mutation, { input: { email: 'NEW.PERSON@example.com', name: 'Other' } });
    expect(duplicate.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.email' });
    const after = await subgraph.db.query<{ n: number }>('SELECT count(*)::int AS n FROM users');
    expect(after[0]?.n).toBe(before[0]?.n);
    // A refused account asks for no welcome.
    expect(await outboxRows()).toHaveLength(1);
  });

  it.each([
    [{ email: 'not-an-email', name: 'X' }, 'input.email'],
    [{ email: 'ok@example.com', name: '   ' }, 'input.name'],
  ])('refuses createUser(%j)', async (input, field) => {
    const res = await graphql(subgraph.url, 'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }', { input });
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });

  it('resolves many entity references with one SQL statement', async () => {
    const reps = shop.users.slice(0, 30).map((u) => ({ __typename: 'User', id: u.id }));
    reps.push({ __typename: 'User', id: 'malformed' });
    let res: Awaited<ReturnType<typeof graphql<{ _entities: ({ id: string; name: string } | null)[] }>>> | undefined;
    const statements = await countStatements(subgraph.db, async () => {
      res = await graphql(subgraph.url, 'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id name } } }', { r: reps });
    });
    expect(res?.errors).toBeUndefined();
    expect(res?.data?._entities).toHaveLength(31);
    expect(res?.data?._entities[5]).toEqual({ id: shop.users[5]!.id, name: shop.users[5]!.name });
    expect(res?.data?._entities[30]).toBeNull();
    expect(statements).toBe(1);
  });

  it('has the outbox table the shared relay expects', async () => {
    const columns = await subgraph.db.transaction(async (tx) => {
      await tx.query(`${OUTBOX_TABLE_SQL.replace('CREATE TABLE outbox', 'CREATE TEMP TABLE outbox_reference')} ON COMMIT DROP`);
      const describe = (table: string) =>
        tx.query(
          `SELECT column_name, data_type, is_nullable FROM information_schema.columns
           WHERE table_name = $1 ORDER BY ordinal_position`,
          [table],
        );
      return { ours: await describe('outbox'), reference: await describe('outbox_reference') };
    });
    expect(columns.ours).toHaveLength(13);
    expect(columns.ours).toEqual(columns.reference);
  });
});
