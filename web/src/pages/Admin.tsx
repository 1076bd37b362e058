import { useState } from 'react';
import { useMutation, useQuery } from '@apollo/client/react';
import { ADMIN_ORDERS, UPDATE_ORDER_STATUS } from '../operations.js';
import type { OrderStatus } from '../gql/graphql.js';
import { formatMoney } from '../money.js';
import { ErrorNote } from '../errors.js';

const STATUSES: OrderStatus[] = ['PENDING', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'REJECTED', 'CANCELLED'];
/** The moves an administrator makes here; the orders subgraph refuses any other with INVALID_TRANSITION. */
const NEXT: Partial<Record<OrderStatus, OrderStatus>> = { CONFIRMED: 'SHIPPED', SHIPPED: 'DELIVERED' };

export function AdminPage() {
  const [status, setStatus] = useState<OrderStatus | ''>('CONFIRMED');
  const { data, error, loading } = useQuery(ADMIN_ORDERS, { variables: { status: status || undefined, first: 20 }, fetchPolicy: 'cache-and-network' });
  const [update, updating] = useMutation(UPDATE_ORDER_STATUS);

  return (
    <section>
      <h1>Orders (administrator)</h1>
      <label>
        Status{' '}
        <select name="status" value={status} onChange={(e) => setStatus(e.target.value as OrderStatus | '')}>
          <option value="">Any</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <ErrorNote error={error ?? updating.error} />
      {loading && !data ? <p>Loading…</p> : null}
      <table data-testid="admin-orders">
        <tbody>
          {data?.orders.edges.map(({ node }) => {
            const next = NEXT[node.status];
            return (
              <tr key={node.id} data-testid={`admin-order-${node.id}`}>
                <td>
                  <code>{node.id.slice(0, 8)}</code>
                </td>
                <td>{node.user.name}</td>
                <td>{new Date(node.createdAt).toLocaleString()}</td>
                <td>{formatMoney(node.total)}</td>
                <td>
                  <strong>{node.status}</strong>
                </td>
                <td>
                  {next ? (
                    <button type="button" disabled={updating.loading} onClick={() => void update({ variables: { id: node.id, status: next } }).catch(() => undefined)}>
                      Mark {next.toLowerCase()}
                    </button>
                  ) : null}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
