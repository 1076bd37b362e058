-- Idempotency keys of placeOrder: a retry with the same key (same customer) answers the order first placed with it.
-- The row is inserted in the transaction that inserts the order, before it: a concurrent placement with the same key
-- waits on the primary key until that transaction ends, then finds the key taken. The foreign key is checked at
-- commit, when the order exists. request_hash is the SHA-256 of the normalised request (user, merged sorted lines),
-- so the same key with another order is told apart. Rows older than the TTL are ignored and pruned.
CREATE TABLE order_idempotency_keys (
  user_id uuid NOT NULL,
  key text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
  request_hash text NOT NULL,
  order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);

-- The pruner deletes the oldest rows first.
CREATE INDEX order_idempotency_keys_created_idx ON order_idempotency_keys (created_at);
