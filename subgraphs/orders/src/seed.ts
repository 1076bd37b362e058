import { demoShop, type Database } from '@shop/common';
import { insertOrders } from './db.js';

/** Loads the demo orders and their lines; one transaction, so a failed run leaves nothing half-seeded. */
export async function seed(db: Database): Promise<{ inserted: number }> {
  return db.transaction(async (tx) => ({ inserted: await insertOrders(tx, demoShop().orders) }));
}
