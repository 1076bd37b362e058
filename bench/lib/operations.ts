import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import { Supergraph, operationFromDocument } from '@apollo/federation-internals';
import { QueryPlanner, type PlanNode } from '@apollo/query-planner';

/** The operation of the issue: the router tests' OrderDetails, so both measure and test the same text. */
export { ORDER_DETAILS } from '../../router/test/fixtures/operations.js';

/** What a client following an order sees on each change: fields of users and products in the payload. */
export const FOLLOW_ORDER = /* GraphQL */ `subscription FollowOrder($id: ID!) {
  orderStatusChanged(orderId: $id) { id status user { name } items { quantity product { name inStock } } }
}`;

export interface Money {
  amount: number;
  currency: string;
}

export interface OrderDetails {
  order: {
    id: string;
    status: string;
    createdAt: string;
    total: Money;
    user: { id: string; name: string; email: string };
    items: {
      quantity: number;
      unitPrice: Money;
      subtotal: { amount: number };
      product: {
        id: string;
        sku: string;
        name: string;
        price: Money;
        inStock: boolean;
        stock: number;
        shippingEstimate: Money | null;
      };
    }[];
  } | null;
}

/** One fetch of a query plan: the subgraph and the exact operation text the gateway sends it. */
export interface PlannedFetch {
  service: string;
  operation: string;
}

/** The fetches the federation query planner makes for an operation on a supergraph, in plan order. */
export function plannedFetches(supergraphPath: string, query: string): PlannedFetch[] {
  const supergraph = Supergraph.build(readFileSync(supergraphPath, 'utf8'));
  const plan = new QueryPlanner(supergraph).buildQueryPlan(operationFromDocument(supergraph.schema, parse(query)));
  const fetches: PlannedFetch[] = [];
  const walk = (node: PlanNode | undefined): void => {
    if (!node) return;
    switch (node.kind) {
      case 'Fetch':
        fetches.push({ service: node.serviceName, operation: node.operation });
        return;
      case 'Flatten':
        return walk(node.node);
      case 'Sequence':
      case 'Parallel':
        return node.nodes.forEach(walk);
      default:
        throw new Error(`the bench does not handle ${node.kind} plan nodes`);
    }
  };
  walk(plan.node as PlanNode | undefined);
  return fetches;
}
