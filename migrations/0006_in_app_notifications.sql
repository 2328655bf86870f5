-- In-app notifications (issue 12 item 5).
--
-- The in-app dispatcher reads the outbox with its own cursor (`in_app_cursor.last_seq`,
-- like mail's): each message it reads becomes zero or more `notifications` rows, one per
-- user the subscriptions and preferences select, in the transaction that moves the
-- cursor. `UNIQUE (user_id, message_id)` keeps a re-read message (the outbox is
-- delivered at least once) from telling a user twice.

CREATE TABLE in_app_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- The last outbox `seq` turned into notifications.
    last_seq BIGINT NOT NULL
);

-- Notifications start with what happens after this migration.
INSERT INTO in_app_cursor (id, last_seq) VALUES (1, COALESCE((SELECT MAX(seq) FROM outbox_messages), 0));

CREATE TABLE notifications (
    -- Commit order: the list is newest first by it, the SSE feed replays by it.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    -- `ntf_…`, the public id (also the SSE `id:`).
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL REFERENCES outbox_messages (id),
    -- The outbox message type, e.g. `stream.live`.
    type TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    -- JSON object: the stream (`stream_id`, `stream_slug`) and event (`event_id`) it is about.
    data TEXT NOT NULL,
    -- RFC 3339, UTC, milliseconds.
    created_at TEXT NOT NULL,
    read_at TEXT,
    UNIQUE (user_id, message_id)
);

CREATE INDEX notifications_by_user ON notifications (user_id, seq);
CREATE INDEX notifications_unread ON notifications (user_id, seq) WHERE read_at IS NULL;
