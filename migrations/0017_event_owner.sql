-- Who created a scheduled event: a draft is shown only to its owner, the owner of its
-- stream and admins (GET /api/v1/events, /events/{id}, search, subscriptions).
-- Events from before this migration have no owner; their drafts stay with the
-- stream's owner and the admins.
ALTER TABLE scheduled_events ADD COLUMN owner_id TEXT REFERENCES users (id) ON DELETE SET NULL;
