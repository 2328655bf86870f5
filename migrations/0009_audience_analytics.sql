-- Audience analytics (issue 13 items 1-4): ended viewer sessions, concurrent-viewer and
-- watch-time points, 360 heatmaps. Written in batches by the analytics task
-- (src/analytics/task.rs), never on the request path. Times are Unix milliseconds.
-- A scope is (content_kind, content_id): 'stream' + stream id, or 'asset' + asset id;
-- live_session_id is the live session playing when the viewer session started ('' for
-- none, and for assets).

CREATE TABLE viewer_sessions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The viewer session id (anonymous `a…`, a playback token's `vs_…`).
    sid TEXT NOT NULL,
    content_kind TEXT NOT NULL CHECK (content_kind IN ('stream', 'asset')),
    content_id TEXT NOT NULL,
    live_session_id TEXT NOT NULL,
    -- The playback token's subject, else the session id: unique viewers count these.
    subject TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    ended_ms BIGINT NOT NULL,
    media_seconds REAL NOT NULL,
    bytes BIGINT NOT NULL,
    -- JSON object: rendition name -> media seconds.
    renditions TEXT NOT NULL,
    ua_class TEXT NOT NULL CHECK (ua_class IN ('browser', 'headset', 'mobile', 'other'))
);

CREATE INDEX viewer_sessions_content ON viewer_sessions (content_kind, content_id, started_ms);
CREATE INDEX viewer_sessions_live ON viewer_sessions (live_session_id);

-- One row per scope, live session and bucket: 1-minute points (interval '1m') and their
-- hourly rollup ('1h'). Concurrent viewers are 5 s samples: their maximum, and their
-- sum and count for the average.
CREATE TABLE audience_points (
    interval TEXT NOT NULL CHECK (interval IN ('1m', '1h')),
    content_kind TEXT NOT NULL,
    content_id TEXT NOT NULL,
    live_session_id TEXT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    concurrent_max BIGINT NOT NULL,
    concurrent_sum BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    watch_seconds REAL NOT NULL,
    PRIMARY KEY (interval, content_kind, content_id, live_session_id, bucket_ms)
);

CREATE INDEX audience_points_live ON audience_points (live_session_id, interval, bucket_ms);

-- Seconds looked per 10 degree cell, per scope, live session and minute: 648
-- little-endian f64 (18 pitch rows of 36 yaw cells, see src/analytics/heatmap.rs).
CREATE TABLE heatmaps (
    content_kind TEXT NOT NULL,
    content_id TEXT NOT NULL,
    live_session_id TEXT NOT NULL,
    minute_ms BIGINT NOT NULL,
    bins BLOB NOT NULL,
    PRIMARY KEY (content_kind, content_id, live_session_id, minute_ms)
);

CREATE INDEX heatmaps_live ON heatmaps (live_session_id, minute_ms);
