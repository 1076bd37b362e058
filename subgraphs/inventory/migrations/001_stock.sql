-- Units that can still be promised to a buyer, one row per product. The product itself lives in the products
-- subgraph, so there is no foreign key; a product without a row has nothing available. Reservations for pending
-- orders will get their own table and move units out of `available` in the same transaction.
CREATE TABLE stock (
  product_id uuid PRIMARY KEY,
  available integer NOT NULL CHECK (available >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);
