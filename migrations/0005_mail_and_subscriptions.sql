-- Email and subscriptions (issue 12 items 2 and 6).
--
-- Accounts get an optional email address. The mail dispatcher reads the outbox with
-- its own cursor (`mail_cursor.last_seq`, independent of the webhooks' fan-out): each
-- message it reads becomes zero or more `mail_deliveries` rows, rendered, in the
-- transaction that moves the cursor, then each row is sent until the SMTP server
-- accepts it or it runs out of attempts. Times in `*_ms` columns are Unix milliseconds.

ALTER TABLE users ADD COLUMN email TEXT;

CREATE TABLE mail_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- The last outbox `seq` turned into mails.
    last_seq BIGINT NOT NULL
);

-- Mail starts with what happens after this migration, not with the whole history.
INSERT INTO mail_cursor (id, last_seq) VALUES (1, COALESCE((SELECT MAX(seq) FROM outbox_messages), 0));

CREATE TABLE mail_deliveries (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES outbox_messages (id),
    -- welcome, event_starting_soon, stream_live.
    template TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    last_error TEXT,
    created_ms BIGINT NOT NULL,
    UNIQUE (message_id, recipient, template)
);

CREATE INDEX mail_deliveries_due ON mail_deliveries (next_attempt_ms) WHERE state = 'pending';

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Exactly one of the two: a stream (the channel) or one event.
    stream_id TEXT REFERENCES streams (id) ON DELETE CASCADE,
    event_id TEXT REFERENCES scheduled_events (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    CHECK ((stream_id IS NULL) <> (event_id IS NULL))
);

CREATE UNIQUE INDEX subscriptions_unique_stream ON subscriptions (user_id, stream_id) WHERE stream_id IS NOT NULL;
CREATE UNIQUE INDEX subscriptions_unique_event ON subscriptions (user_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX subscriptions_by_stream ON subscriptions (stream_id);
CREATE INDEX subscriptions_by_event ON subscriptions (event_id);

-- Per user, notification type and channel: on or off. A missing row means on.
CREATE TABLE notification_preferences (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'in_app')),
    enabled BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, type, channel)
);
