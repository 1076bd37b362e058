import type { BaseContext } from '@apollo/server';
import type { SubgraphDefinition } from '@shop/common';
import { users } from '@shop/users';
import { products } from '@shop/products';
import { orders } from '@shop/orders';
import { inventory } from '@shop/inventory';

/** Every subgraph of this repository, as its package defines it. */
export const SUBGRAPHS = [users, products, orders, inventory] as unknown as SubgraphDefinition<BaseContext>[];
