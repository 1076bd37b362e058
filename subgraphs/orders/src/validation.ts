import { badInput, parseId } from '@shop/common';

export const MAX_LINES = 50;
export const MAX_QUANTITY = 1000;
export const MAX_REASON_LENGTH = 500;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;

/** One product of a validated order, with the input line it first appeared on (for error fields). */
export interface RequestedLine {
  productId: string;
  quantity: number;
  index: number;
}

export interface OrderRequest {
  userId: string;
  lines: RequestedLine[];
}

/**
 * Checks what can be checked without asking anyone: ids, the number of lines, quantities; merges lines for the
 * same product. Throws BAD_USER_INPUT naming the field.
 */
export function parseOrderRequest(input: {
  userId: string;
  items: readonly { productId: string; quantity: number }[];
}): OrderRequest {
  const userId = parseId('input.userId', input.userId);
  if (input.items.length < 1 || input.items.length > MAX_LINES) {
    throw badInput('input.items', `must have 1 to ${MAX_LINES} lines, got ${input.items.length}`);
  }
  const byProduct = new Map<string, RequestedLine>();
  input.items.forEach((item, index) => {
    const productId = parseId(`input.items[${index}].productId`, item.productId);
    const field = `input.items[${index}].quantity`;
    if (!Number.isInteger(item.quantity) || item.quantity < 1 || item.quantity > MAX_QUANTITY) {
      throw badInput(field, `must be between 1 and ${MAX_QUANTITY}, got ${item.quantity}`);
    }
    const earlier = byProduct.get(productId);
    if (!earlier) {
      byProduct.set(productId, { productId, quantity: item.quantity, index });
      return;
    }
    earlier.quantity += item.quantity;
    if (earlier.quantity > MAX_QUANTITY) {
      throw badInput(
        field,
        `product ${productId} is also on input.items[${earlier.index}]; together the lines ask for ${earlier.quantity} units, at most ${MAX_QUANTITY}`,
      );
    }
  });
  return { userId, lines: [...byProduct.values()] };
}

/** Validates a cancellation reason: blank means none. */
export function parseReason(reason: string | null | undefined): string | null {
  const trimmed = reason?.trim();
  if (!trimmed) return null;
  if (trimmed.length > MAX_REASON_LENGTH) {
    throw badInput('reason', `must be at most ${MAX_REASON_LENGTH} characters, got ${trimmed.length}`);
  }
  return trimmed;
}

/** Printable ASCII, space included: what a UUID or any other generated token is made of, and fits an HTTP header. */
const PRINTABLE = /^[\x20-\x7e]+$/;

/** Validates placeOrder's idempotency key: absent means none; otherwise 1 to 200 printable ASCII characters. */
export function parseIdempotencyKey(key: string | null | undefined): string | undefined {
  if (key === null || key === undefined) return undefined;
  if (key.length < 1 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw badInput('input.idempotencyKey', `must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters, got ${key.length}`);
  }
  if (!PRINTABLE.test(key)) {
    throw badInput('input.idempotencyKey', 'must be printable ASCII characters (e.g. a UUID from crypto.randomUUID())');
  }
  return key;
}
