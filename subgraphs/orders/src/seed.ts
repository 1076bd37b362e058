import { demoShop, type Database, type DemoOrder } from '@shop/common';
import { insertOrders, nameOrderLines, type NewOrder, type OrderStatus } from './db.js';

/** The statuses a demo order went through to reach its own, as the life cycle allows. */
const PATHS: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING: ['PENDING'],
  CONFIRMED: ['PENDING', 'CONFIRMED'],
  SHIPPED: ['PENDING', 'CONFIRMED', 'SHIPPED'],
  DELIVERED: ['PENDING', 'CONFIRMED', 'SHIPPED', 'DELIVERED'],
  CANCELLED: ['PENDING', 'CANCELLED'],
  REJECTED: ['PENDING', 'REJECTED'],
};

const DEMO_REASONS: Partial<Record<OrderStatus, string>> = {
  REJECTED: 'Not enough stock (demo data)',
  CANCELLED: 'Cancelled by the customer (demo data)',
};

function toNewOrder(order: DemoOrder, names: ReadonlyMap<string, string>): NewOrder {
  const reason = DEMO_REASONS[order.status] ?? null;
  return {
    ...order,
    statusReason: reason,
    lines: order.lines.map((line) => ({ ...line, productName: names.get(line.productId) ?? null })),
    // Every step at the order's creation time: the demo data has one timestamp per order, and updatedAt must
    // stay equal to createdAt.
    history: PATHS[order.status].map((status) => ({
      status,
      at: order.createdAt,
      reason: status === order.status ? reason : null,
    })),
  };
}

/**
 * Loads the demo orders with their lines and status histories, and names the lines of demo products that a
 * database from before product names has; one transaction, so a failed run leaves nothing half-seeded.
 * Announces nothing to the router's entity cache: it runs at start-up, after the migrations and before the
 * subgraph serves, so no answer about these rows can be cached yet.
 */
export async function seed(db: Database): Promise<{ inserted: number }> {
  const shop = demoShop();
  const names = new Map(shop.products.map((p) => [p.id, p.name]));
  return db.transaction(async (tx) => {
    const inserted = await insertOrders(tx, shop.orders.map((order) => toNewOrder(order, names)));
    return { inserted: inserted + (await nameOrderLines(tx, names)) };
  });
}
