-- Recordings of live sessions (issue 11 item 3). Portable SQL, like 0001.

-- The stream's recording settings as JSON: {"enabled": bool, "retention_days": n|null,
-- "max_bytes": n|null}. Streams made before this migration record by default.
ALTER TABLE streams ADD COLUMN record TEXT NOT NULL DEFAULT '{"enabled":true}';

-- A recorded asset's stream and live session; NULL for uploads.
ALTER TABLE assets ADD COLUMN stream_id TEXT;
ALTER TABLE assets ADD COLUMN live_session_id TEXT;
-- TRUE while the live session is being written; a row still TRUE at start-up was cut
-- by a crash and is finalised from what reached the disk.
ALTER TABLE assets ADD COLUMN recording BOOLEAN NOT NULL DEFAULT FALSE;

CREATE INDEX assets_stream ON assets (stream_id, created_at);
CREATE INDEX assets_live_session ON assets (live_session_id);
