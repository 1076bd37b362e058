-- Jobs the outbox handed to Redis are confirmed once BullMQ reports them completed (their consumer committed the
-- effect); until then the reconciler (OutboxReconciler in @shop/common) checks them and sends again any that Redis
-- lost. Events (pub/sub) are confirmed when relayed.
ALTER TABLE outbox ADD COLUMN confirmed_at timestamptz;

-- When the reconciler looks at an unconfirmed job again; null: once it is older than the reconciler's age.
ALTER TABLE outbox ADD COLUMN check_after timestamptz;

-- Rows relayed before this migration are taken as done.
UPDATE outbox SET confirmed_at = relayed_at WHERE relayed_at IS NOT NULL;

-- The reconciler only ever looks for relayed jobs not confirmed yet.
CREATE INDEX outbox_unconfirmed_idx ON outbox (relayed_at) WHERE relayed_at IS NOT NULL AND confirmed_at IS NULL;
