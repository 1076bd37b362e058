import type { Logger } from '@shop/common';

export interface RouterContext {
  requestId: string;
  log: Logger;
}
