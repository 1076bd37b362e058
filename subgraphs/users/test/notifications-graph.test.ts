import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { demoShop } from '@shop/common';
import {
  ADMIN,
  customer,
  countStatements,
  createTestRedis,
  graphql,
  startTestSubgraph,
  type TestRedis,
  type TestSubgraph,
} from '@shop/common/testing';
import type { UsersRuntime } from '../src/runtime.js';
import { users } from '../src/server.js';

interface NotificationPage {
  edges: { cursor: string; node: { id: string; kind: string; subject: string; text: string; sentAt: string; transport: string } }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

const shop = demoShop();
let redis: TestRedis;
let subgraph: TestSubgraph & { runtime: UsersRuntime | undefined };

beforeAll(async () => {
  redis = await createTestRedis('notifications-graph');
  subgraph = await startTestSubgraph(users, {
    seed: true,
    // The worker runs inside the subgraph here, as it does by default on the embedded database.
    env: { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix, NOTIFICATION_WORKER_IN_PROCESS: 'true' },
  });
});
afterAll(async () => {
  await subgraph?.close();
  await redis?.cleanup();
});

/** Inserts notifications for a user directly, `count` of them `step` seconds apart, the newest `step` before `newest`. */
async function insertNotifications(userId: string, count: number, newest = Date.UTC(2026, 0, 31), step = 1): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  await subgraph.db.query(
    `INSERT INTO notifications (id, job_id, user_id, kind, recipient, subject, text_body, html_body, transport, message_id, sent_at)
     SELECT id, 'test-' || id, $2, 'ORDER_SHIPPED', 'x@example.com', 'Subject ' || n, 'Text ' || n, '<p>' || n || '</p>', 'LOCAL',
       '<' || id || '@shop.example>', to_timestamp($3::float8 / 1000) - make_interval(secs => n * $4)
     FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)`,
    [ids, userId, newest, step],
  );
  return ids;
}

const PAGE = `edges { cursor node { id kind subject text sentAt transport } } pageInfo { hasNextPage endCursor }`;

describe('User.notifications', () => {
  it('shows the welcome notification of a new account, directly and through _entities', async () => {
    const created = await graphql<{ createUser: { id: string } }>(
      subgraph.url,
      'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }',
      { input: { email: 'graph.welcome@example.com', name: 'Greta Graph' } },
    );
    const id = created.data!.createUser.id;
    const direct = async () =>
      (await graphql<{ user: { notifications: NotificationPage } }>(subgraph.url, `query($id: ID!) { user(id: $id) { notifications { ${PAGE} } } }`, { id }, subgraph.as(customer(id))))
        .data?.user.notifications.edges.map((e) => e.node);
    await expect.poll(direct, { timeout: 15_000, interval: 100 }).toHaveLength(1);

    const [node] = (await direct())!;
    expect(node).toMatchObject({ kind: 'WELCOME', subject: 'Welcome to the Shop, Greta Graph!', transport: 'LOCAL' });
    expect(node!.text).toContain('Hi Greta Graph,');
    expect(new Date(node!.sentAt).getTime()).toBeGreaterThan(Date.now() - 60_000);

    const entities = await graphql<{ _entities: { notifications: NotificationPage }[] }>(
      subgraph.url,
      `query($r: [_Any!]!) { _entities(representations: $r) { ... on User { notifications(first: 5) { ${PAGE} } } } }`,
      { r: [{ __typename: 'User', id }] },
      subgraph.as(customer(id)),
    );
    expect(entities.errors).toBeUndefined();
    expect(entities.data?._entities[0]?.notifications.edges.map((e) => e.node)).toEqual([node]);
  });

  it('pages newest first with cursors that are stable under ties', async () => {
    const user = shop.users[10]!;
    const ids = await insertNotifications(user.id, 25);
    // Two more, newer, at exactly the same time: the id breaks the tie.
    const tied = await insertNotifications(user.id, 2, Date.UTC(2026, 0, 31) + 5_000, 0);
    const query = `query($id: ID!, $after: String) { user(id: $id) { notifications(first: 10, after: $after) { ${PAGE} } } }`;
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const res = await graphql<{ user: { notifications: NotificationPage } }>(subgraph.url, query, { id: user.id, after }, subgraph.as(ADMIN));
      expect(res.errors).toBeUndefined();
      const page: NotificationPage = res.data!.user.notifications;
      seen.push(...page.edges.map((e) => e.node.id));
      pages++;
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual([...[...tied].sort().reverse(), ...ids]);
  });

  it.each([
    ['first: 101', 'first'],
    ['after: "bm9wZQ"', 'after'],
  ])('refuses notifications(%s) with BAD_USER_INPUT', async (args, field) => {
    const res = await graphql(subgraph.url, `query($id: ID!) { user(id: $id) { notifications(${args}) { edges { cursor } } } }`, {
      id: shop.users[0]!.id,
    }, subgraph.as(ADMIN));
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });

  it('loads the notifications of many users in one statement per set of arguments', async () => {
    // The runtime's own statements (outbox relay polls, reconciliation rounds) would be counted with the requests'.
    const runtime = subgraph.runtime!;
    await Promise.all([runtime.relay.stop(), runtime.reconciler.stop()]);
    onTestFinished(() => {
      runtime.relay.start();
      runtime.reconciler.start();
    });
    const many = shop.users.slice(20, 40);
    for (const user of many) await insertNotifications(user.id, 3);
    const reps = many.map((u) => ({ __typename: 'User', id: u.id }));
    const run = (selection: string) =>
      graphql<{ _entities: Record<string, NotificationPage>[] }>(
        subgraph.url,
        `query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id ${selection} } } }`,
        { r: reps },
        subgraph.as(ADMIN),
      );

    const withoutNotifications = await countStatements(subgraph.db, () => run(''));
    let res: Awaited<ReturnType<typeof run>> | undefined;
    const withNotifications = await countStatements(subgraph.db, async () => {
      res = await run(`notifications(first: 2) { ${PAGE} }`);
    });
    expect(res?.errors).toBeUndefined();
    expect(withNotifications - withoutNotifications).toBe(1);
    for (const entity of res!.data!._entities) {
      expect(entity.notifications!.edges).toHaveLength(2);
      expect(entity.notifications!.pageInfo.hasNextPage).toBe(true);
    }

    const twoSets = await countStatements(subgraph.db, () =>
      run(`a: notifications(first: 1) { ${PAGE} } b: notifications(first: 3) { ${PAGE} }`),
    );
    expect(twoSets - withoutNotifications).toBe(2);
  });
});
