import { main, runSubgraph } from '@shop/common';
import { inventory } from './server.js';

main('inventory', () => runSubgraph(inventory));
