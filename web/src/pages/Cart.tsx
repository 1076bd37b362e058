import { useRef, useState } from 'react';
import { useMutation } from '@apollo/client/react';
import { PLACE_ORDER } from '../operations.js';
import { formatMoney } from '../money.js';
import { useCart } from '../cart.js';
import { useSession } from '../session.js';
import { navigate } from '../navigation.js';
import { ErrorNote, shownError } from '../errors.js';

/**
 * The cart and checkout. One idempotency key per checkout attempt: made on the first "Place order", sent again
 * unchanged when that attempt is retried after a network or availability error (the API then answers with the order
 * the first attempt placed, if it did, instead of placing a second), and dropped once the order is placed or the
 * cart changes.
 */
export function CartPage() {
  const { session } = useSession();
  const cart = useCart();
  const attempt = useRef<{ key: string; lines: string } | undefined>(undefined);
  const [placeOrder, { loading, error }] = useMutation(PLACE_ORDER);
  const [retryable, setRetryable] = useState(false);
  const items = cart.lines.map((l) => ({ productId: l.productId, quantity: l.quantity }));
  const linesKey = JSON.stringify(items);
  const total = cart.lines.reduce((sum, l) => sum + l.price.amount * l.quantity, 0);
  const currency = cart.lines[0]?.price.currency ?? 'USD';

  const place = async () => {
    if (!attempt.current || attempt.current.lines !== linesKey) attempt.current = { key: crypto.randomUUID(), lines: linesKey };
    try {
      const result = await placeOrder({ variables: { input: { items, idempotencyKey: attempt.current.key } } });
      const order = result.data?.placeOrder;
      if (!order) return;
      attempt.current = undefined;
      cart.clear();
      navigate(`#/order/${order.id}`);
    } catch (failure) {
      setRetryable(shownError(failure).retryable);
    }
  };

  if (cart.lines.length === 0) return <section><h1>Cart</h1><p>Your cart is empty. <a href="#/products">Browse products</a></p></section>;
  return (
    <section>
      <h1>Cart</h1>
      <table>
        <tbody>
          {cart.lines.map((line) => (
            <tr key={line.productId} data-testid="cart-line">
              <td>{line.name}</td>
              <td>{formatMoney(line.price)}</td>
              <td>
                <input
                  aria-label={`Quantity of ${line.name}`}
                  type="number"
                  min="0"
                  max="1000"
                  value={line.quantity}
                  disabled={loading}
                  onChange={(e) => cart.setQuantity(line.productId, Number(e.target.value))}
                />
              </td>
              <td>{formatMoney({ amount: line.price.amount * line.quantity, currency: line.price.currency })}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>Total: {formatMoney({ amount: total, currency })}</p>
      {session ? (
        <button type="button" onClick={() => void place()} disabled={loading} data-testid="place-order">
          {loading ? 'Placing…' : retryable && error ? 'Retry placing the order' : 'Place order'}
        </button>
      ) : (
        <p>
          <a href="#/login">Log in</a> to place the order.
        </p>
      )}
      {loading ? (
        <p role="status" data-testid="placing">
          Placing your order…
        </p>
      ) : null}
      <ErrorNote error={error} />
    </section>
  );
}
