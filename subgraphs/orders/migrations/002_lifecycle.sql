-- The order life cycle: status history, the reason behind the current status, product names captured at
-- placement, and the transactional outbox that carries saga jobs, notifications and events to Redis.

-- The product's name when the order was placed, for notifications and receipts; null on lines written before
-- this column existed (the seed fills the demo orders' lines).
ALTER TABLE order_items ADD COLUMN product_name text;

-- Why the order has its current status (a rejection's shortage, a cancellation's reason); null when none.
ALTER TABLE orders ADD COLUMN status_reason text;

-- Every status an order has entered, appended in the transaction that changes orders.status.
CREATE TABLE order_status_changes (
  id bigserial PRIMARY KEY,
  order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  status text NOT NULL
    CHECK (status IN ('PENDING', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'CANCELLED', 'REJECTED')),
  reason text,
  at timestamptz(3) NOT NULL DEFAULT now()
);

CREATE INDEX order_status_changes_order_idx ON order_status_changes (order_id, at, id);

-- Orders that exist before this migration get a history of one entry: their current status.
INSERT INTO order_status_changes (order_id, status, at) SELECT id, status, updated_at FROM orders;

-- Columns as in @shop/common OUTBOX_TABLE_SQL, which OutboxRelay reads.
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
