import { main, runSubgraph } from '@shop/common';
import { orders } from './server.js';

main('orders', () => runSubgraph(orders));
