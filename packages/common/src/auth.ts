import { GraphQLError } from 'graphql';
import type { Identity } from './identity.js';
import { stableUuid } from './ids.js';
import { ErrorCode } from './errors.js';

/**
 * Authorization rules, applied by the subgraph that owns the data. `identity` is what the router
 * (or a trusted service) signed for this request; null for an anonymous caller.
 */
export interface Viewer {
  identity: Identity | null;
}

/**
 * In a resolver: a field error, HTTP 200 (a 4xx from a subgraph would read to the router as an outage).
 * `httpStatus` is for refusing the whole request before any resolver runs.
 */
export function unauthenticated(message = 'Log in to do this.', httpStatus?: number): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code: ErrorCode.Unauthenticated, ...(httpStatus ? { http: { status: httpStatus } } : {}) },
  });
}

export function forbidden(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: ErrorCode.Forbidden } });
}

/** The caller, or UNAUTHENTICATED. */
export function requireUser(viewer: Viewer): Identity {
  if (!viewer.identity) throw unauthenticated();
  return viewer.identity;
}

export function isAdmin(identity: Identity | null): boolean {
  return identity?.role === 'ADMIN';
}

/** An ADMIN, or UNAUTHENTICATED / FORBIDDEN. */
export function requireAdmin(viewer: Viewer, action: string): Identity {
  const identity = requireUser(viewer);
  if (identity.role !== 'ADMIN') throw forbidden(`Only an administrator can ${action}.`);
  return identity;
}

/**
 * Whether the caller may read what belongs to `userId`: that user, an ADMIN, or another subgraph
 * (SERVICE, which only the shared identity secret can sign).
 */
export function mayActFor(identity: Identity | null, userId: string): boolean {
  if (!identity) return false;
  return identity.role === 'ADMIN' || identity.role === 'SERVICE' || identity.sub === userId;
}

/** That user, an ADMIN or a service; otherwise UNAUTHENTICATED (anonymous) or FORBIDDEN. */
export function requireSelfOrAdmin(viewer: Viewer, userId: string, what: string): Identity {
  const identity = requireUser(viewer);
  if (!mayActFor(identity, userId)) throw forbidden(`Only its owner or an administrator can ${what}.`);
  return identity;
}

/** The demo data's administrator (seeded by the users subgraph; README shows the credentials). */
export const DEMO_ADMIN = {
  id: stableUuid('user:admin'),
  email: 'admin@shop.example',
  name: 'Shop Admin',
  password: 'admin-demo-password',
} as const;

/** The password of every seeded demo customer. */
export const DEMO_CUSTOMER_PASSWORD = 'customer-demo-password';
