import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { ROOT } from './processes.js';

/**
 * Authentication, when the supergraph has it: the bench logs in as the seeded
 * admin through the router and sends the token on every request (HTTP header,
 * graphql-ws connectionParams). Direct subgraph calls carry the identity the
 * router would sign; `subgraphHeaders` is the one place that adds it.
 */
export const ADMIN = { email: 'admin@shop.example', password: 'admin-demo-password' } as const;

export function supergraphHasLogin(supergraphPath: string): boolean {
  return /^\s*login\(/m.test(readFileSync(supergraphPath, 'utf8'));
}

/** `Authorization` for the router, or nothing when the graph has no login. */
export async function login(routerUrl: string, supergraphPath: string): Promise<Record<string, string>> {
  if (!supergraphHasLogin(supergraphPath)) return {};
  const res = await fetch(routerUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }',
      variables: { e: ADMIN.email, p: ADMIN.password },
    }),
  });
  const body = (await res.json()) as { data?: { login?: { token?: string } }; errors?: unknown[] };
  const token = body.data?.login?.token;
  if (!token) throw new Error(`login as ${ADMIN.email} failed: ${JSON.stringify(body.errors ?? body)}`);
  return { authorization: `Bearer ${token}` };
}

type Sign = (identity: { sub: string; role: 'ADMIN' }, audience: string, secret: string) => string;
let signer: { sign: Sign; header: string; secret: string; devSecret: string } | undefined | null = null;

/**
 * Loaded at start (not imported statically) so the bench runs before and after the
 * identity module lands in @shop/common.
 */
export async function loadIdentity(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (signer !== null) return;
  const file = pathToFileURL(path.join(ROOT, 'packages/common/src/identity.ts')).href;
  const mod = (await import(file).catch(() => undefined)) as
    | { signIdentity?: Sign; IDENTITY_HEADER?: string; DEV_IDENTITY_SECRET?: string }
    | undefined;
  signer =
    mod?.signIdentity && mod.IDENTITY_HEADER
      ? { sign: mod.signIdentity, header: mod.IDENTITY_HEADER, secret: env.IDENTITY_SECRET ?? mod.DEV_IDENTITY_SECRET ?? '', devSecret: mod.DEV_IDENTITY_SECRET ?? '' }
      : undefined;
}

/** Headers of a call made straight to a subgraph as the admin: the signed identity when the graph has one. */
export function subgraphHeaders(subgraph: string, adminId = 'bench-admin'): Record<string, string> {
  if (!signer) return {};
  return { [signer.header]: signer.sign({ sub: adminId, role: 'ADMIN' }, subgraph, signer.secret) };
}

/** Runs `fn` with direct calls signed by the development secret, which the in-process test stack uses. */
export async function withDevelopmentIdentity<T>(fn: () => Promise<T>): Promise<T> {
  if (!signer) return fn();
  const current = signer;
  signer = { ...current, secret: current.devSecret };
  try {
    return await fn();
  } finally {
    signer = current;
  }
}
