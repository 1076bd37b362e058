import { demoShop, type Database } from '@shop/common';
import { insertUsers } from './db.js';

/** Loads the demo users; running it again inserts nothing. */
export async function seed(db: Database): Promise<{ inserted: number }> {
  return { inserted: await insertUsers(db, demoShop().users) };
}
