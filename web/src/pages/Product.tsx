import { useState } from 'react';
import { useQuery } from '@apollo/client/react';
import { PRODUCT_PAGE } from '../operations.js';
import { formatMoney } from '../money.js';
import { useCart } from '../cart.js';
import { ErrorNote } from '../errors.js';

/** A product; its stock and shipping estimate (inventory, after a price and weight look-up) are deferred. */
export function ProductPage({ id }: { id: string }) {
  const cart = useCart();
  const [quantity, setQuantity] = useState(1);
  const [added, setAdded] = useState(false);
  const { data, error, loading, dataState } = useQuery(PRODUCT_PAGE, { variables: { id } });
  const product = data?.product;
  if (loading && !product) return <p>Loading…</p>;
  if (!product) return error ? <ErrorNote error={error} /> : <p>No such product.</p>;
  const delivery = 'shippingEstimate' in product && product.shippingEstimate !== undefined ? product : undefined;

  return (
    <section>
      <h1>{product.name}</h1>
      <p>
        <small>
          {product.sku} · {product.category}
        </small>
      </p>
      <p>{product.description}</p>
      <p className="price">{formatMoney(product.price)}</p>
      <div className="delivery" data-testid="delivery">
        {delivery ? (
          <>
            <p data-testid="shipping-estimate">Shipping: {delivery.shippingEstimate ? formatMoney(delivery.shippingEstimate) : 'not available'}</p>
            <p data-testid="stock">{delivery.inStock ? `${delivery.stock} in stock` : 'Out of stock'}</p>
          </>
        ) : (
          <p data-testid="shipping-pending" aria-busy="true">
            {dataState === 'streaming' || loading ? 'Estimating shipping…' : 'Shipping estimate unavailable'}
          </p>
        )}
      </div>
      <ErrorNote error={error} />
      <label>
        Quantity <input name="quantity" type="number" min="1" max="1000" value={quantity} onChange={(e) => setQuantity(Math.max(1, Number(e.target.value)))} />
      </label>{' '}
      <button
        type="button"
        disabled={delivery ? !delivery.inStock : false}
        onClick={() => {
          cart.add({ productId: product.id, name: product.name, price: product.price }, quantity);
          setAdded(true);
        }}
      >
        Add to cart
      </button>
      {added ? (
        <p role="status">
          Added. <a href="#/cart">Go to the cart</a>
        </p>
      ) : null}
    </section>
  );
}
