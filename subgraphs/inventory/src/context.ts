import type { Database, Logger, RequestInfo } from '@shop/common';
import { createLoaders, type Loaders } from './loaders.js';

export interface Context {
  db: Database;
  loaders: Loaders;
  requestId: string;
  log: Logger;
}

export function createContext(db: Database, info: RequestInfo): Context {
  return { db, loaders: createLoaders(db), requestId: info.requestId, log: info.log };
}
