import { demoShop, type Database } from '@shop/common';
import { insertProducts } from './db.js';

/** Loads the demo catalog; running it again inserts nothing. */
export async function seed(db: Database): Promise<{ inserted: number }> {
  return { inserted: await insertProducts(db, demoShop().products) };
}
