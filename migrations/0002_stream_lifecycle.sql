-- The stream record grows what the live path needs (issue 10): whether it may go
-- live, how long a publisher may be away without ending the live session, and where
-- its media comes from. `source` is JSON: {"kind":"rtmp-push"} or {"kind":"rtsp-pull",
-- "url":…,"transport":…,"username":…,"password":…}; the camera password must be
-- kept (not hashed) to log in to the camera, and is never returned by the API.

ALTER TABLE streams ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE streams ADD COLUMN reconnect_window_s BIGINT NOT NULL DEFAULT 60;
ALTER TABLE streams ADD COLUMN source TEXT NOT NULL DEFAULT '{"kind":"rtmp-push"}';
