import { createHmac, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import {
  DEMO_ADMIN,
  DEMO_CUSTOMER_PASSWORD,
  DEV_IDENTITY_SECRET,
  DEV_JWT_SECRET,
  IDENTITY_HEADER,
  createTokenVerifier,
  demoShop,
  signIdentity,
} from '@shop/common';
import { ADMIN, createTestRedis, customer, graphql, startTestSubgraph, type TestRedis, type TestSubgraph } from '@shop/common/testing';
import { users } from '../src/server.js';

const shop = demoShop();
const alice = shop.users[1]!;
const bob = shop.users[2]!;
const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token expiresAt user { id email role } } }';

let subgraph: TestSubgraph;
let redis: TestRedis;

beforeAll(async () => {
  redis = await createTestRedis('users-auth');
  subgraph = await startTestSubgraph(users, {
    seed: true,
    env: { REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix, NOTIFICATION_WORKER_IN_PROCESS: 'false' },
  });
});
afterAll(async () => {
  await subgraph?.close();
  await redis?.cleanup();
});

describe('login', () => {
  it('returns a token naming the user and role, verifiable with the development secret', async () => {
    const res = await graphql<{ login: { token: string; expiresAt: string; user: { id: string; email: string; role: string } } }>(
      subgraph.url,
      LOGIN,
      { e: alice.email.toUpperCase(), p: DEMO_CUSTOMER_PASSWORD },
    );
    expect(res.errors).toBeUndefined();
    const { token, expiresAt, user } = res.data!.login;
    expect(user).toEqual({ id: alice.id, email: alice.email, role: 'CUSTOMER' });
    const verify = createTokenVerifier({ secret: DEV_JWT_SECRET, jwksUrl: undefined, issuer: 'shop-users', audience: 'shop' });
    expect(await verify(token)).toEqual({ sub: alice.id, role: 'CUSTOMER' });
    // An hour by default.
    expect(new Date(expiresAt).getTime() - Date.now()).toBeGreaterThan(3500_000);
    expect(decodeJwt(token).exp! * 1000).toBe(new Date(expiresAt).getTime());
  });

  it('gives the administrator the ADMIN role', async () => {
    const res = await graphql<{ login: { user: { role: string } } }>(subgraph.url, LOGIN, { e: DEMO_ADMIN.email, p: DEMO_ADMIN.password });
    expect(res.data?.login.user.role).toBe('ADMIN');
  });

  it.each([
    ['a wrong password', alice.email, 'not-the-password'],
    ['an unknown email', 'nobody@example.com', DEMO_CUSTOMER_PASSWORD],
    ['another customer-s password on the admin', DEMO_ADMIN.email, DEMO_CUSTOMER_PASSWORD],
  ])('refuses %s with the same UNAUTHENTICATED answer', async (_case, email, password) => {
    const res = await graphql(subgraph.url, LOGIN, { e: email, p: password });
    expect(res.data).toBeNull();
    expect(res.errors?.[0]).toMatchObject({ message: 'Email or password is incorrect.', extensions: { code: 'UNAUTHENTICATED' } });
  });

  it('gives demo customers seeded before logins existed the demo password on the next seed run', async () => {
    await subgraph.db.query('UPDATE users SET password_hash = NULL WHERE id = $1', [bob.id]);
    expect((await graphql(subgraph.url, LOGIN, { e: bob.email, p: DEMO_CUSTOMER_PASSWORD })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await users.seed(subgraph.db)).toEqual({ inserted: 0 });
    expect((await graphql(subgraph.url, LOGIN, { e: bob.email, p: DEMO_CUSTOMER_PASSWORD })).errors).toBeUndefined();
  });

  it('lets an account created with a password log in, and stores only a scrypt hash', async () => {
    const created = await graphql<{ createUser: { id: string } }>(
      subgraph.url,
      'mutation($i: CreateUserInput!) { createUser(input: $i) { id } }',
      { i: { email: 'signup@example.com', name: 'Sign Up', password: 'a long enough secret' } },
    );
    expect(created.errors).toBeUndefined();
    const [row] = await subgraph.db.query<{ passwordHash: string; role: string }>(
      'SELECT password_hash AS "passwordHash", role FROM users WHERE id = $1',
      [created.data!.createUser.id],
    );
    expect(row?.role).toBe('CUSTOMER');
    expect(row?.passwordHash).toMatch(/^scrypt\$131072\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(row?.passwordHash).not.toContain('a long enough secret');
    const res = await graphql(subgraph.url, LOGIN, { e: 'signup@example.com', p: 'a long enough secret' });
    expect(res.errors).toBeUndefined();
    const short = await graphql(subgraph.url, 'mutation($i: CreateUserInput!) { createUser(input: $i) { id } }', {
      i: { email: 'short@example.com', name: 'Short', password: 'short' },
    });
    expect(short.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.password' });
  });
});

describe('rules of the users subgraph', () => {
  const ME = '{ me { id email role } }';
  const USER = 'query($id: ID!) { user(id: $id) { id name email role notifications { edges { cursor } } } }';
  const USERS = '{ users(first: 1) { edges { node { id } } } }';

  it('answers me with the caller, and null for an anonymous one', async () => {
    expect((await graphql(subgraph.url, ME, undefined, subgraph.as(customer(alice.id)))).data).toEqual({
      me: { id: alice.id, email: alice.email, role: 'CUSTOMER' },
    });
    expect(await graphql(subgraph.url, ME)).toMatchObject({ data: { me: null } });
  });

  it('lets a customer read their own account, and an administrator any', async () => {
    for (const identity of [customer(alice.id), ADMIN]) {
      const res = await graphql<{ user: { email: string } }>(subgraph.url, USER, { id: alice.id }, subgraph.as(identity));
      expect(res.errors).toBeUndefined();
      expect(res.data?.user.email).toBe(alice.email);
    }
  });

  it('refuses another customer FORBIDDEN and an anonymous caller UNAUTHENTICATED', async () => {
    const other = await graphql(subgraph.url, USER, { id: alice.id }, subgraph.as(customer(bob.id)));
    expect(other.data).toEqual({ user: null });
    expect(other.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const anonymous = await graphql(subgraph.url, USER, { id: alice.id });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('hides email, role and notifications of an entity from other customers', async () => {
    const query = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id name email } } }';
    const res = await graphql<{ _entities: unknown[] }>(subgraph.url, query, { r: [{ __typename: 'User', id: alice.id }] }, subgraph.as(customer(bob.id)));
    expect(res.data?._entities).toEqual([null]);
    expect(res.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([['FORBIDDEN', ['_entities', 0, 'email']]]);
    const names = await graphql(subgraph.url, 'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { name } } }', {
      r: [{ __typename: 'User', id: alice.id }],
    });
    expect(names.data).toEqual({ _entities: [{ name: alice.name }] });
  });

  it('lists users for administrators only', async () => {
    expect((await graphql(subgraph.url, USERS, undefined, subgraph.as(ADMIN))).errors).toBeUndefined();
    expect((await graphql(subgraph.url, USERS, undefined, subgraph.as(customer(alice.id)))).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await graphql(subgraph.url, USERS)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('forged identities', () => {
  const asAdmin = (header: string) => graphql(subgraph.url, '{ users(first: 1) { edges { node { id } } } }', undefined, { [IDENTITY_HEADER]: header });

  it('accepts the identity the router signs', async () => {
    const res = await asAdmin(signIdentity(ADMIN, 'users', DEV_IDENTITY_SECRET));
    expect(res.errors).toBeUndefined();
  });

  it.each([
    ['signed with another secret', () => signIdentity(ADMIN, 'users', 'a-secret-the-router-does-not-have')],
    [
      'a customer identity edited to ADMIN',
      () => {
        const [payload, signature] = signIdentity(customer(alice.id), 'users', DEV_IDENTITY_SECRET).split('.');
        const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
        return `${Buffer.from(JSON.stringify({ ...claims, role: 'ADMIN' })).toString('base64url')}.${signature}`;
      },
    ],
    ['expired', () => signIdentity(ADMIN, 'users', DEV_IDENTITY_SECRET, Date.now() - 61_000)],
    ['signed for another subgraph', () => signIdentity(ADMIN, 'orders', DEV_IDENTITY_SECRET)],
    ['not a signed identity', () => 'ADMIN'],
    [
      'unsigned JSON with a valid-looking MAC of something else',
      () => `${Buffer.from('{"sub":"x","role":"ADMIN","aud":"users","exp":9999999999}').toString('base64url')}.${createHmac('sha256', DEV_IDENTITY_SECRET).update('other').digest('base64url')}`,
    ],
  ])('refuses an identity %s with HTTP 401 UNAUTHENTICATED', async (_case, forge) => {
    const res = await asAdmin(forge());
    expect(res.status).toBe(401);
    expect(res.data).toBeUndefined();
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('asymmetric tokens', () => {
  it('signs ES256 with JWT_PRIVATE_KEY and serves the public key at /.well-known/jwks.json', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const keyed = await startTestSubgraph(users, {
      seed: true,
      env: { REDIS_URL: redis.url, QUEUE_PREFIX: `${redis.prefix}:jwks`, NOTIFICATION_WORKER_IN_PROCESS: 'false', JWT_PRIVATE_KEY: pem },
    });
    try {
      const jwksUrl = keyed.url.replace('/graphql', '/.well-known/jwks.json');
      const jwks = (await (await fetch(jwksUrl)).json()) as { keys: Record<string, unknown>[] };
      expect(jwks.keys).toHaveLength(1);
      expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(jwks.keys[0]).not.toHaveProperty('d');
      const res = await graphql<{ login: { token: string } }>(keyed.url, LOGIN, { e: DEMO_ADMIN.email, p: DEMO_ADMIN.password });
      const token = res.data!.login.token;
      expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', kid: jwks.keys[0]!.kid });
      const viaJwks = createTokenVerifier({ secret: undefined, jwksUrl, issuer: 'shop-users', audience: 'shop' });
      expect(await viaJwks(token)).toEqual({ sub: DEMO_ADMIN.id, role: 'ADMIN' });
      // A token signed with the development secret does not pass for one from the key pair.
      const hs = await graphql<{ login: { token: string } }>(subgraph.url, LOGIN, { e: DEMO_ADMIN.email, p: DEMO_ADMIN.password });
      await expect(viaJwks(hs.data!.login.token)).rejects.toThrow();
    } finally {
      await keyed.close();
    }
  });
});
