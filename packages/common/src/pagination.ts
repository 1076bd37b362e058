import { badInput } from './errors.js';

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** Validates `first`: 0 to 100, default 20. */
export function pageSize(first: number | null | undefined, field = 'first'): number {
  if (first === null || first === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 0 || first > MAX_PAGE_SIZE) {
    throw badInput(field, `must be between 0 and ${MAX_PAGE_SIZE}, got ${first}`);
  }
  return first;
}

/**
 * Keyset cursor: the sort key of the last row seen, as opaque base64url JSON.
 * Stable under inserts, unlike offsets.
 */
export interface Cursor {
  /** Sort value (an ISO timestamp, a name, a number, ...). */
  k: string | number;
  /** Row id, the tie-breaker. */
  id: string;
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.k, cursor.id])).toString('base64url');
}

export function decodeCursor(after: string | null | undefined, field = 'after'): Cursor | undefined {
  if (after === null || after === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(after, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      (typeof value[0] === 'string' || typeof value[0] === 'number') &&
      typeof value[1] === 'string'
    ) {
      return { k: value[0], id: value[1] };
    }
  } catch {
    // fall through to the error below
  }
  throw badInput(field, 'is not a cursor returned by this field (use pageInfo.endCursor)');
}

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/**
 * Builds a connection from rows fetched with LIMIT first + 1: the extra row only
 * says whether there is a next page.
 */
export function toConnection<T>(rows: readonly T[], first: number, cursorOf: (row: T) => Cursor): Connection<T> {
  const page = rows.slice(0, first);
  const edges = page.map((node) => ({ cursor: encodeCursor(cursorOf(node)), node }));
  return {
    edges,
    pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null },
  };
}
