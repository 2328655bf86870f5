-- Notifications (issue 12): the durable outbox, webhook endpoints with their
-- deliveries and attempts, and scheduled events.
--
-- An outbox message is written in the same transaction as the change it announces
-- (or, for media-path events, by the one writer fed from the lifecycle bus). The
-- dispatcher fans each message out into one delivery per matching webhook (setting
-- `fanned_out_at` in that transaction), then sends deliveries until they succeed or
-- run out of attempts. Times in `*_ms` columns are Unix milliseconds; `seq` orders
-- messages (SQLite's rowid; BIGSERIAL on PostgreSQL).

CREATE TABLE outbox_messages (
    seq INTEGER PRIMARY KEY,
    -- `msg_…`: the `webhook-id` of every delivery of this message.
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    -- RFC 3339 with milliseconds, UTC.
    occurred_at TEXT NOT NULL,
    -- JSON object.
    data TEXT NOT NULL,
    fanned_out_at BIGINT
);

CREATE INDEX outbox_messages_pending ON outbox_messages (seq) WHERE fanned_out_at IS NULL;

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    -- JSON array of message types; empty means every type.
    event_types TEXT NOT NULL,
    -- `whsec_` + base64: kept as it is, panocast signs with it.
    secret TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    -- Why it was disabled automatically, when it was.
    disabled_reason TEXT,
    -- Deliveries that used up every attempt since the last success.
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL REFERENCES outbox_messages (id),
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ms) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_ms);

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    at TEXT NOT NULL,
    status_code BIGINT,
    latency_ms BIGINT NOT NULL,
    error TEXT,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE scheduled_events (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    tags TEXT NOT NULL,
    stream_id TEXT REFERENCES streams (id) ON DELETE SET NULL,
    -- RFC 3339 as given, and the same instant in Unix milliseconds for the timer.
    scheduled_start TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    scheduled_end TEXT,
    lead_s BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('draft', 'scheduled', 'starting_soon', 'live', 'ended', 'cancelled')),
    -- The live session that made it live.
    session_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX scheduled_events_by_stream ON scheduled_events (stream_id, state);
