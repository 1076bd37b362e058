-- A row the relay cannot deliver (its queue or channel is unknown to this service) is set aside with the reason in
-- last_error instead of holding up every row after it; an operator fixes and re-queues it (failed_at = NULL).
ALTER TABLE outbox ADD COLUMN failed_at timestamptz;
