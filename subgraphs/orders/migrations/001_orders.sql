-- Orders reference users and products by id only: those live in other subgraphs' databases.
-- Timestamps keep millisecond precision so a cursor (a JavaScript Date) compares exactly with the stored value.
CREATE TABLE orders (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL,
  status text NOT NULL DEFAULT 'PENDING'
    CHECK (status IN ('PENDING', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'CANCELLED', 'REJECTED')),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now()
);

-- The unit price is copied from the catalog when the order is placed; amounts share the order's currency.
CREATE TABLE order_items (
  order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  line int NOT NULL CHECK (line >= 1),
  product_id uuid NOT NULL,
  quantity int NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
  unit_price_amount int NOT NULL CHECK (unit_price_amount > 0),
  PRIMARY KEY (order_id, line)
);

-- One index per listing: a user's orders, all orders, and all orders in one status, each newest first.
CREATE INDEX orders_user_created_idx ON orders (user_id, created_at DESC, id DESC);

CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC);

CREATE INDEX orders_status_created_idx ON orders (status, created_at DESC, id DESC);
