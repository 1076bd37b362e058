import { useQuery, useSubscription } from '@apollo/client/react';
import { FOLLOW_ORDER, ORDER_PAGE } from '../operations.js';
import { formatMoney } from '../money.js';
import { ErrorNote } from '../errors.js';

/**
 * One order, kept current by `orderStatusChanged`: each event updates the cached Order (same id), so the status and
 * the timeline change on the page without a reload.
 */
export function OrderPage({ id }: { id: string }) {
  const { data, error, loading } = useQuery(ORDER_PAGE, { variables: { id } });
  const live = useSubscription(FOLLOW_ORDER, { variables: { id } });
  const order = data?.order;
  if (loading && !order) return <p>Loading…</p>;
  if (!order) return error ? <ErrorNote error={error} /> : <p>No such order.</p>;

  return (
    <section>
      <h1>Order</h1>
      <p>
        <code data-testid="order-id">{order.id}</code> · placed {new Date(order.createdAt).toLocaleString()}
      </p>
      <p>
        Status:{' '}
        <strong className={`status status-${order.status}`} data-testid="order-status">
          {order.status}
        </strong>
        {order.statusReason ? <span> ({order.statusReason})</span> : null}{' '}
        <small data-testid="live">{live.error ? 'live updates stopped' : 'live'}</small>
      </p>
      <ErrorNote error={live.error} />
      <h2>Timeline</h2>
      <ol className="timeline" data-testid="timeline">
        {order.statusHistory.map((change) => (
          <li key={`${change.status}-${change.at}`}>
            <strong>{change.status}</strong> {new Date(change.at).toLocaleString()}
            {change.reason ? <span> — {change.reason}</span> : null}
          </li>
        ))}
      </ol>
      <h2>Items</h2>
      <table>
        <tbody>
          {order.items.map((item) => (
            <tr key={item.product.id}>
              <td>
                <a href={`#/product/${item.product.id}`}>{item.product.name}</a>
              </td>
              <td>× {item.quantity}</td>
              <td>{formatMoney(item.unitPrice)}</td>
              <td>{formatMoney(item.subtotal)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>Total: {formatMoney(order.total)}</p>
    </section>
  );
}
