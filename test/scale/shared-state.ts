import { createHash, randomUUID } from 'node:crypto';
import { request, type Customer } from '../faults/order-load.js';
import { CLIENT_TIMEOUT_MS, RATE_LIMIT } from './scale-stack.js';

/** One check of state the routers share through Redis, with what it saw. */
export interface SharedCheck {
  name: string;
  ok: boolean;
  detail: string;
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: { data?: unknown; errors?: { extensions?: { code?: string } }[] } }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
  });
  return { status: response.status, body: (await response.json().catch(() => ({}))) as { data?: unknown } };
}

/** A persisted query registered through one router is run by the other from its hash alone. */
export async function persistedQueryShared(registerAt: string, readAt: string, headers: Record<string, string>): Promise<SharedCheck> {
  // A new text each time, so the hash is unknown to both routers until registered.
  const query = `query Scale { products(first: 1) { edges { node { id } } } } # ${randomUUID()}`;
  const persistedQuery = { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') };
  const registered = await post(registerAt, { query, extensions: { persistedQuery } }, headers);
  const byHash = await post(readAt, { extensions: { persistedQuery } }, headers);
  const code = byHash.body.errors?.[0]?.extensions?.code;
  const ok = registered.status === 200 && !registered.body.errors && byHash.status === 200 && byHash.body.data !== undefined && !code;
  return { name: 'APQ', ok, detail: `registered: HTTP ${registered.status}; by hash on the other router: HTTP ${byHash.status}${code ? ` ${code}` : ''}` };
}

/**
 * One client (its own address) sends exactly the limit's worth of requests, alternately through each router: all
 * pass, and the next one through either router is refused. With counters per router, neither would refuse.
 */
export async function rateLimitShared(routers: readonly string[], address: string): Promise<SharedCheck> {
  const headers = { 'x-forwarded-for': address };
  const statuses: number[] = [];
  for (let sent = 0; sent < RATE_LIMIT.max; sent += 10) {
    const batch = Array.from({ length: Math.min(10, RATE_LIMIT.max - sent) }, (_, i) => routers[(sent + i) % routers.length]!);
    statuses.push(...(await Promise.all(batch.map((url) => post(url, { query: '{ __typename }' }, headers).then((r) => r.status)))));
  }
  const over = await Promise.all(routers.map((url) => post(url, { query: '{ __typename }' }, headers).then((r) => r.status)));
  const passed = statuses.filter((s) => s === 200).length;
  const ok = passed === RATE_LIMIT.max && over.every((s) => s === 429);
  return {
    name: 'rate limit',
    ok,
    detail: `${passed}/${RATE_LIMIT.max} let through alternating over ${routers.length} routers, then ${over.map((s) => `HTTP ${s}`).join(' and ')} (429 expected from each)`,
  };
}

const READ = 'query Read($id: ID!) { order(id: $id) { items { product { id price { amount } stock } } } }';
const PRICE = 'mutation Price($id: ID!, $amount: Int!) { updateProduct(id: $id, input: { price: { amount: $amount, currency: "USD" } }) { id price { amount } } }';
const RESTOCK = 'mutation Restock($id: ID!) { restock(productId: $id, quantity: 1) { id stock } }';

interface Read {
  price: number;
  stock: number;
}

async function readProduct(url: string, orderId: string, productId: string, admin: Customer): Promise<Read> {
  type Data = { order: { items: { product: { id: string; price: { amount: number }; stock: number } }[] } | null };
  const answer = await request<Data>(url, READ, { id: orderId }, { ...admin.headers, authorization: admin.authorization }, CLIENT_TIMEOUT_MS);
  const product = answer.data?.order?.items.find((item) => item.product.id === productId)?.product;
  if (answer.code || !product) throw new Error(`reading product ${productId} through ${url}: ${answer.code ?? 'not in the order'} ${answer.message ?? ''}`);
  return { price: product.price.amount, stock: product.stock };
}

/**
 * A product's price (products) and stock (inventory) changed through one router are read at once through the other,
 * whose entity cache held both: the writes bump the entities' generations in Redis, which every router checks.
 * `restocked` is told of the unit added, so the stock checks count it.
 */
export async function entityCacheShared(
  writeAt: string,
  readAt: string,
  target: { orderId: string; productId: string },
  admin: Customer,
  restocked: (productId: string, units: number) => void,
): Promise<SharedCheck> {
  try {
    // Twice: the second read is served from the reading router's cache.
    await readProduct(readAt, target.orderId, target.productId, admin);
    const before = await readProduct(readAt, target.orderId, target.productId, admin);
    const auth = { ...admin.headers, authorization: admin.authorization };
    const priced = await request<{ updateProduct: { price: { amount: number } } }>(writeAt, PRICE, { id: target.productId, amount: before.price + 1 }, auth, CLIENT_TIMEOUT_MS);
    const stocked = await request<{ restock: { stock: number } }>(writeAt, RESTOCK, { id: target.productId }, auth, CLIENT_TIMEOUT_MS);
    if (!stocked.code) restocked(target.productId, 1);
    if (priced.code || stocked.code) return { name: 'entity cache', ok: false, detail: `writes failed: ${priced.code ?? ''} ${stocked.code ?? ''}` };
    const after = await readProduct(readAt, target.orderId, target.productId, admin);
    const want = { price: priced.data!.updateProduct.price.amount, stock: stocked.data!.restock.stock };
    const ok = after.price === want.price && after.stock === want.stock;
    return {
      name: 'entity cache',
      ok,
      detail: `price ${before.price} -> ${want.price}, stock ${before.stock} -> ${want.stock} written through one router; the other read price ${after.price}, stock ${after.stock} at once`,
    };
  } catch (error) {
    return { name: 'entity cache', ok: false, detail: error instanceof Error ? error.message : String(error) };
  }
}
