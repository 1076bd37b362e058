-- Messages committed with a state change and relayed to BullMQ afterwards (OUTBOX_TABLE_SQL in @shop/common).
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

-- One row per delivered notification. job_id is the BullMQ job id, so a job delivered twice records once.
CREATE TABLE notifications (
  id uuid PRIMARY KEY,
  job_id text NOT NULL UNIQUE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('WELCOME', 'ORDER_PLACED', 'ORDER_CONFIRMED', 'ORDER_REJECTED', 'ORDER_SHIPPED', 'ORDER_DELIVERED', 'ORDER_CANCELLED')),
  recipient text NOT NULL,
  subject text NOT NULL,
  text_body text NOT NULL,
  html_body text NOT NULL,
  transport text NOT NULL CHECK (transport IN ('LOCAL', 'SMTP')),
  message_id text NOT NULL,
  sent_at timestamptz(3) NOT NULL DEFAULT now()
);

-- User.notifications pages newest first.
CREATE INDEX notifications_user_sent_idx ON notifications (user_id, sent_at DESC, id DESC);
