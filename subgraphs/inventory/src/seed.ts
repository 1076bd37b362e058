import { demoShop, type Database } from '@shop/common';
import { insertStock } from './db.js';

/** Loads the demo stock levels; running it again inserts nothing. */
export async function seed(db: Database): Promise<{ inserted: number }> {
  return { inserted: await insertStock(db, demoShop().products) };
}
