import { main, runSubgraph } from '@shop/common';
import { products } from './server.js';

main('products', () => runSubgraph(products));
