-- The audit log (issue 18 item 5): who changed what, when. One row per changing API
-- request (POST, PUT, PATCH, DELETE) by a signed-in admin or broadcaster, written
-- before the response leaves, so an acknowledged change is never missing from it.
-- Rows are only ever appended.

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    -- RFC 3339 UTC with milliseconds.
    at TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    -- The method and the route as declared, e.g. `PATCH /api/v1/streams/{stream}`.
    action TEXT NOT NULL,
    -- The path as requested (ids and slugs filled in), without the query string.
    target TEXT NOT NULL,
    status INTEGER NOT NULL,
    -- The client address, when known.
    address TEXT
);

CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
