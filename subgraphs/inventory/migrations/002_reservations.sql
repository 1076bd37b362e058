-- Stock reservations for orders, taken by the reservation saga. Deciding on an order writes its outcome row
-- first: the primary key makes a repeated or concurrent `reserve` for the same order wait, then do nothing.
--   reserved  units moved from stock.available into reservations (released_at set once they came back)
--   rejected  not enough stock for some line; nothing moved
--   cancelled the order was released before it was decided; a later `reserve` for it does nothing
CREATE TABLE reservation_outcomes (
  order_id uuid PRIMARY KEY,
  outcome text NOT NULL CHECK (outcome IN ('reserved', 'rejected', 'cancelled')),
  reason text,
  decided_at timestamptz NOT NULL DEFAULT now(),
  released_at timestamptz,
  CHECK (released_at IS NULL OR outcome = 'reserved')
);

-- The units an order holds, per product. Kept after a release (see released_at) as a record of the order.
CREATE TABLE reservations (
  order_id uuid NOT NULL REFERENCES reservation_outcomes (order_id),
  product_id uuid NOT NULL,
  quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
  PRIMARY KEY (order_id, product_id)
);

CREATE INDEX reservations_product_idx ON reservations (product_id);

-- Columns as in @shop/common OUTBOX_TABLE_SQL, which OutboxRelay reads: reservation results go out through it.
CREATE TABLE outbox (
  id bigserial PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('job', 'event')),
  target text NOT NULL,
  name text NOT NULL,
  key text NOT NULL,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  relayed_at timestamptz,
  attempts int NOT NULL DEFAULT 0,
  last_error text
);

-- The relay only ever looks for rows not relayed yet.
CREATE INDEX outbox_unrelayed_idx ON outbox (id) WHERE relayed_at IS NULL;
