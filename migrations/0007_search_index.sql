-- Keyword search over streams, scheduled events and assets (issue 13 item 5).
--
-- SQLite only (FTS5 has no PostgreSQL twin; a PostgreSQL build would use tsvector
-- with the same three text fields).
--
-- `search_documents` says once what is searchable: title, description and tags (as
-- words) of every stream, event and asset. `search_items` holds one row per item,
-- copied from that view by the triggers below, and is the external content of the
-- FTS5 table `search_index`. Every insert, update and delete of a stream, event or
-- asset changes the index in the same statement, hence the same transaction: the
-- index can never lag behind a committed change, even across `kill -9`.
--
-- Rebuild (e.g. after changing the tokenizer): refill `search_items` from
-- `search_documents`, then `INSERT INTO search_index(search_index) VALUES('rebuild')`
-- (`panocast::search::index::rebuild`).

CREATE VIEW search_documents (kind, item_id, title, description, tags) AS
    SELECT 'stream', id, title, description,
           CASE WHEN json_valid(tags) THEN COALESCE((SELECT group_concat(value, ' ') FROM json_each(tags)), '') ELSE tags END
    FROM streams
    UNION ALL
    SELECT 'event', id, title, description,
           CASE WHEN json_valid(tags) THEN COALESCE((SELECT group_concat(value, ' ') FROM json_each(tags)), '') ELSE tags END
    FROM scheduled_events
    UNION ALL
    SELECT 'asset', id, title, '', '' FROM assets;

CREATE TABLE search_items (
    id INTEGER PRIMARY KEY,
    -- 'stream', 'event' or 'asset'.
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    -- The tags joined by spaces.
    tags TEXT NOT NULL,
    UNIQUE (kind, item_id)
);

-- Case and diacritics folded (`Café` = `cafe`); words split on anything that is not
-- a letter or digit.
CREATE VIRTUAL TABLE search_index USING fts5 (
    title, description, tags,
    content = 'search_items', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- The index's words, for the one-typo fallback.
CREATE VIRTUAL TABLE search_vocab USING fts5vocab (search_index, 'row');

CREATE TRIGGER search_items_ai AFTER INSERT ON search_items BEGIN
    INSERT INTO search_index (rowid, title, description, tags)
    VALUES (new.id, new.title, new.description, new.tags);
END;

CREATE TRIGGER search_items_ad AFTER DELETE ON search_items BEGIN
    INSERT INTO search_index (search_index, rowid, title, description, tags)
    VALUES ('delete', old.id, old.title, old.description, old.tags);
END;

CREATE TRIGGER search_items_au AFTER UPDATE ON search_items BEGIN
    INSERT INTO search_index (search_index, rowid, title, description, tags)
    VALUES ('delete', old.id, old.title, old.description, old.tags);
    INSERT INTO search_index (rowid, title, description, tags)
    VALUES (new.id, new.title, new.description, new.tags);
END;

-- Streams. The stores write with `INSERT … ON CONFLICT DO UPDATE`, which fires the
-- UPDATE triggers when the row exists.
CREATE TRIGGER search_streams_ai AFTER INSERT ON streams BEGIN
    INSERT INTO search_items (kind, item_id, title, description, tags)
    SELECT kind, item_id, title, description, tags FROM search_documents
    WHERE kind = 'stream' AND item_id = new.id;
END;

CREATE TRIGGER search_streams_au AFTER UPDATE OF title, description, tags ON streams BEGIN
    DELETE FROM search_items WHERE kind = 'stream' AND item_id = old.id;
    INSERT INTO search_items (kind, item_id, title, description, tags)
    SELECT kind, item_id, title, description, tags FROM search_documents
    WHERE kind = 'stream' AND item_id = new.id;
END;

CREATE TRIGGER search_streams_ad AFTER DELETE ON streams BEGIN
    DELETE FROM search_items WHERE kind = 'stream' AND item_id = old.id;
END;

-- Scheduled events.
CREATE TRIGGER search_events_ai AFTER INSERT ON scheduled_events BEGIN
    INSERT INTO search_items (kind, item_id, title, description, tags)
    SELECT kind, item_id, title, description, tags FROM search_documents
    WHERE kind = 'event' AND item_id = new.id;
END;

CREATE TRIGGER search_events_au AFTER UPDATE OF title, description, tags ON scheduled_events BEGIN
    DELETE FROM search_items WHERE kind = 'event' AND item_id = old.id;
    INSERT INTO search_items (kind, item_id, title, description, tags)
    SELECT kind, item_id, title, description, tags FROM search_documents
    WHERE kind = 'event' AND item_id = new.id;
END;

CREATE TRIGGER search_events_ad AFTER DELETE ON scheduled_events BEGIN
    DELETE FROM search_items WHERE kind = 'event' AND item_id = old.id;
END;

-- Assets (a title only).
CREATE TRIGGER search_assets_ai AFTER INSERT ON assets BEGIN
    INSERT INTO search_items (kind, item_id, title, description, tags)
    SELECT kind, item_id, title, description, tags FROM search_documents
    WHERE kind = 'asset' AND item_id = new.id;
END;

CREATE TRIGGER search_assets_au AFTER UPDATE OF title ON assets BEGIN
    DELETE FROM search_items WHERE kind = 'asset' AND item_id = old.id;
    INSERT INTO search_items (kind, item_id, title, description, tags)
    SELECT kind, item_id, title, description, tags FROM search_documents
    WHERE kind = 'asset' AND item_id = new.id;
END;

CREATE TRIGGER search_assets_ad AFTER DELETE ON assets BEGIN
    DELETE FROM search_items WHERE kind = 'asset' AND item_id = old.id;
END;

-- What existed before this migration.
INSERT INTO search_items (kind, item_id, title, description, tags)
SELECT kind, item_id, title, description, tags FROM search_documents;
