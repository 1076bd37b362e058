import { main, runSubgraph } from '@shop/common';
import { users } from './server.js';

main('users', () => runSubgraph(users));
