import { useState, type FormEvent } from 'react';
import { useQuery } from '@apollo/client/react';
import { PRODUCTS } from '../operations.js';
import { formatMoney } from '../money.js';
import { useCart } from '../cart.js';
import { ErrorNote } from '../errors.js';

const CATEGORIES = ['books', 'electronics', 'kitchen', 'garden', 'toys', 'sports', 'clothing', 'beauty'];
const PAGE = 12;

interface Filter {
  category: string;
  search: string;
  minPrice: string;
  maxPrice: string;
}

/** Whole currency units as typed → minor units, or undefined when blank. */
function minor(value: string): number | undefined {
  return value.trim() === '' ? undefined : Math.round(Number(value) * 100);
}

export function ProductsPage() {
  const cart = useCart();
  const [draft, setDraft] = useState<Filter>({ category: '', search: '', minPrice: '', maxPrice: '' });
  const [filter, setFilter] = useState<Filter>(draft);
  // Cursors of the pages before this one, for "Previous"; the API pages forward only.
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const after = cursors[cursors.length - 1];
  const { data, error, loading } = useQuery(PRODUCTS, {
    variables: {
      first: PAGE,
      after,
      filter: { category: filter.category || undefined, search: filter.search || undefined, minPrice: minor(filter.minPrice), maxPrice: minor(filter.maxPrice) },
    },
  });

  const apply = (event: FormEvent) => {
    event.preventDefault();
    setFilter(draft);
    setCursors([undefined]);
  };
  const page = data?.products;

  return (
    <section>
      <h1>Products</h1>
      <form className="filters" onSubmit={apply} aria-label="Filter products">
        <label>
          Category{' '}
          <select name="category" value={draft.category} onChange={(e) => setDraft({ ...draft, category: e.target.value })}>
            <option value="">Any</option>
            {CATEGORIES.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <label>
          Search <input name="search" value={draft.search} onChange={(e) => setDraft({ ...draft, search: e.target.value })} />
        </label>
        <label>
          Price from <input name="minPrice" type="number" min="0" step="0.01" value={draft.minPrice} onChange={(e) => setDraft({ ...draft, minPrice: e.target.value })} />
        </label>
        <label>
          Price up to <input name="maxPrice" type="number" min="0" step="0.01" value={draft.maxPrice} onChange={(e) => setDraft({ ...draft, maxPrice: e.target.value })} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={error} />
      {loading && !page ? <p>Loading…</p> : null}
      <table className="products" data-testid="products">
        <thead>
          <tr>
            <th>Product</th>
            <th>Category</th>
            <th>Price</th>
            <th>Stock</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {page?.edges.map(({ node }) => (
            <tr key={node.id} data-testid="product-row" data-category={node.category}>
              <td>
                <a href={`#/product/${node.id}`}>{node.name}</a> <small>{node.sku}</small>
              </td>
              <td>{node.category}</td>
              <td>{formatMoney(node.price)}</td>
              <td>{node.inStock ? `${node.stock} in stock` : 'Out of stock'}</td>
              <td>
                <button type="button" disabled={!node.inStock} onClick={() => cart.add({ productId: node.id, name: node.name, price: node.price })}>
                  Add to cart
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {page && page.edges.length === 0 ? <p>No products match.</p> : null}
      <nav className="pager">
        <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous
        </button>
        <button type="button" disabled={!page?.pageInfo.hasNextPage} onClick={() => setCursors([...cursors, page?.pageInfo.endCursor ?? undefined])}>
          Next
        </button>
      </nav>
    </section>
  );
}
