-- On-demand assets, their renditions, resumable uploads and the durable job queue
-- (issue 11). Portable SQL, like 0001: BIGINT Unix seconds, TEXT ids.

CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    -- 'upload' or 'live_session'.
    source TEXT NOT NULL CHECK (source IN ('upload', 'live_session')),
    title TEXT NOT NULL,
    owner_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'unlisted', 'private')),
    projection TEXT NOT NULL,
    yaw DOUBLE PRECISION NOT NULL,
    pitch DOUBLE PRECISION NOT NULL,
    roll DOUBLE PRECISION NOT NULL,
    -- The source file's name as the client gave it (for display only).
    filename TEXT NOT NULL,
    duration_ms BIGINT,
    state TEXT NOT NULL CHECK (state IN ('preparing', 'ready', 'errored')),
    -- Why an errored asset failed, for a person.
    message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX assets_owner ON assets (owner_id);

CREATE TABLE renditions (
    asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    -- 'audio_m4a', 'audio_mp3' (later 'hls').
    kind TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'errored')),
    size_bytes BIGINT,
    message TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (asset_id, kind)
);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    -- What the job works on (an asset id).
    subject TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    -- Not taken before this time (backoff after a failed attempt).
    next_run_at BIGINT NOT NULL,
    progress BIGINT NOT NULL CHECK (progress BETWEEN 0 AND 100),
    last_error TEXT,
    -- Set by a cancel request while the job runs; the running body notices it.
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX jobs_runnable ON jobs (state, next_run_at);
CREATE INDEX jobs_subject ON jobs (subject);

-- tus uploads in progress; the bytes are in a file named after the id, and the
-- offset is that file's length (written and fsynced before it is acknowledged).
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    length BIGINT NOT NULL,
    -- The Upload-Metadata header as it came.
    metadata TEXT NOT NULL,
    -- The asset made when the last byte arrived.
    asset_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
