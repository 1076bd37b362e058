import { useQuery } from '@apollo/client/react';
import { MY_ORDERS } from '../operations.js';
import { formatMoney } from '../money.js';
import { ErrorNote } from '../errors.js';

const PAGE = 10;

export function MyOrdersPage() {
  const { data, error, loading, fetchMore } = useQuery(MY_ORDERS, { variables: { first: PAGE }, fetchPolicy: 'cache-and-network' });
  const orders = data?.me?.orders;
  if (loading && !orders) return <p>Loading…</p>;
  if (!data?.me) return error ? <ErrorNote error={error} /> : <p><a href="#/login">Log in</a> to see your orders.</p>;

  const more = () =>
    fetchMore({
      variables: { after: orders?.pageInfo.endCursor },
      updateQuery: (previous, { fetchMoreResult }) => {
        if (!previous.me || !fetchMoreResult.me) return previous as typeof fetchMoreResult;
        return {
          ...fetchMoreResult,
          me: { ...fetchMoreResult.me, orders: { ...fetchMoreResult.me.orders, edges: [...previous.me.orders.edges, ...fetchMoreResult.me.orders.edges] } },
        };
      },
    });

  return (
    <section>
      <h1>My orders</h1>
      <ErrorNote error={error} />
      <ul className="orders" data-testid="my-orders">
        {orders?.edges.map(({ node }) => (
          <li key={node.id}>
            <a href={`#/order/${node.id}`}>{new Date(node.createdAt).toLocaleString()}</a> <strong>{node.status}</strong> {formatMoney(node.total)}
          </li>
        ))}
      </ul>
      {orders?.edges.length === 0 ? <p>No orders yet.</p> : null}
      {orders?.pageInfo.hasNextPage ? (
        <button type="button" onClick={() => void more()}>
          Load more
        </button>
      ) : null}
    </section>
  );
}
