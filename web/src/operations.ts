/**
 * Every operation the app sends, typed by GraphQL Code Generator's client preset (`npm run codegen` writes src/gql/
 * from these calls and the supergraph's API schema; `npm run codegen:check` fails when it is stale).
 */
import { graphql } from './gql/index.js';

export const LOGIN = graphql(`
  mutation Login($email: String!, $password: String!) {
    login(email: $email, password: $password) {
      token
      expiresAt
      user { id name role }
    }
  }
`);

export const PRODUCTS = graphql(`
  query Products($filter: ProductFilter, $first: Int, $after: String) {
    products(filter: $filter, first: $first, after: $after) {
      edges {
        cursor
        node { id sku name category price { amount currency } stock inStock }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

export const PRODUCT_PAGE = graphql(`
  query ProductPage($id: ID!) {
    product(id: $id) {
      id
      sku
      name
      description
      category
      price { amount currency }
      ... @defer(label: "delivery") {
        stock
        inStock
        shippingEstimate { amount currency }
      }
    }
  }
`);

export const PLACE_ORDER = graphql(`
  mutation PlaceOrder($input: PlaceOrderInput!) {
    placeOrder(input: $input) {
      id
      status
      total { amount currency }
    }
  }
`);

export const ORDER_PAGE = graphql(`
  query OrderPage($id: ID!) {
    order(id: $id) {
      id
      status
      statusReason
      createdAt
      total { amount currency }
      items { quantity unitPrice { amount currency } subtotal { amount currency } product { id name } }
      statusHistory { status at reason }
    }
  }
`);

export const FOLLOW_ORDER = graphql(`
  subscription FollowOrder($id: ID!) {
    orderStatusChanged(orderId: $id) {
      id
      status
      statusReason
      statusHistory { status at reason }
    }
  }
`);

export const MY_ORDERS = graphql(`
  query MyOrders($first: Int, $after: String) {
    me {
      id
      name
      orders(first: $first, after: $after) {
        edges { node { id status createdAt total { amount currency } } }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
`);

export const ADMIN_ORDERS = graphql(`
  query AdminOrders($status: OrderStatus, $first: Int, $after: String) {
    orders(status: $status, first: $first, after: $after) {
      edges { node { id status createdAt user { id name } total { amount currency } } }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

export const UPDATE_ORDER_STATUS = graphql(`
  mutation UpdateOrderStatus($id: ID!, $status: OrderStatus!) {
    updateOrderStatus(id: $id, status: $status) {
      id
      status
      statusHistory { status at reason }
    }
  }
`);
