import { demoShop, type Database } from '@shop/common';
import { insertStock } from './db.js';

/**
 * Loads the demo stock levels; running it again inserts nothing.
 * Announces nothing to the router's entity cache: it runs at start-up, after the migrations and before the
 * subgraph serves, so no answer about these rows can be cached yet.
 */
export async function seed(db: Database): Promise<{ inserted: number }> {
  return { inserted: await insertStock(db, demoShop().products) };
}
