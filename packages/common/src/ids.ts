import { createHash } from 'node:crypto';
import { badInput } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** Validates an ID argument; a malformed one is BAD_USER_INPUT naming the field. */
export function parseId(field: string, value: string): string {
  if (!isUuid(value)) throw badInput(field, `"${value}" is not a valid ID (expected a UUID)`);
  return value.toLowerCase();
}

/** A name-based (version 5 style) UUID, so seed data gets the same ids on every run. */
export function stableUuid(name: string): string {
  const h = createHash('sha1').update(`shop-supergraph:${name}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
