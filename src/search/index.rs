//! The SQLite side of search: the FTS5 table `search_index` that migration 0007 keeps in
//! step with streams, events and assets by triggers, its vocabulary, and a rebuild.

use sqlx::Row;

use super::SearchKind;
use crate::db::Pool;
use crate::schedule::EventState;
use crate::streams::{Projection, Visibility};

/// Matches one query reads at most, best first; results are ordered and filtered after
/// that (live state is not in the database), so only the best this many are ever shown.
pub const MAX_CANDIDATES: i64 = 1000;
/// Typo alternatives kept per query word, the most used words first.
pub const MAX_ALTERNATIVES: usize = 16;

/// Column weights for `bm25`: a word in the title counts most, then tags, then the
/// description.
const BM25: &str = "bm25(search_index, 10.0, 1.0, 5.0)";

/// One matching item, as the index and the item's own row have it.
#[derive(Debug, Clone)]
pub struct Match {
    pub kind: SearchKind,
    pub item_id: String,
    pub title: String,
    /// Part of the description around the matching words (empty without one).
    pub snippet: String,
    /// `bm25`: lower is better.
    pub score: f64,
    pub detail: Detail,
}

/// What a search result needs of the item beyond its text.
#[derive(Debug, Clone)]
pub enum Detail {
    /// Everything else comes from the catalog, which holds streams in memory.
    Stream,
    Event {
        state: EventState,
        scheduled_start: String,
        stream_id: Option<String>,
        /// Who created it (a draft is shown only to them, the stream's owner and
        /// admins).
        owner_id: Option<String>,
        tags: Vec<String>,
    },
    Asset {
        visibility: Visibility,
        owner_id: Option<String>,
        projection: Projection,
    },
}

/// The index over the catalog database.
pub struct SearchIndex {
    pool: Pool,
}

impl SearchIndex {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Items matching the FTS5 `expression` (built by [`super::query`], never typed by
    /// a user), of `kind` when given, best first, at most [`MAX_CANDIDATES`].
    pub async fn matches(
        &self,
        expression: &str,
        kind: Option<SearchKind>,
    ) -> Result<Vec<Match>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT i.kind, i.item_id, i.title, {BM25} AS score, \
                    snippet(search_index, 1, '', '', '…', 24) AS snippet, \
                    e.state AS event_state, e.scheduled_start AS event_start, \
                    e.stream_id AS event_stream, e.tags AS event_tags, e.owner_id AS event_owner, \
                    a.visibility AS asset_visibility, a.owner_id AS asset_owner, \
                    a.projection AS asset_projection \
             FROM search_index \
             JOIN search_items i ON i.id = search_index.rowid \
             LEFT JOIN scheduled_events e ON i.kind = 'event' AND e.id = i.item_id \
             LEFT JOIN assets a ON i.kind = 'asset' AND a.id = i.item_id \
             WHERE search_index MATCH $1 AND ($2 IS NULL OR i.kind = $2) \
             ORDER BY score LIMIT $3"
        ))
        .bind(expression)
        .bind(kind.map(SearchKind::as_str))
        .bind(MAX_CANDIDATES)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            // An item whose row went away between the index and the join is skipped.
            if let Some(m) = match_from_row(row)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Words of the index one edit away from `term` (folded, see
    /// [`super::query::fold`]), the most used first, at most [`MAX_ALTERNATIVES`];
    /// `term` itself is not among them.
    pub async fn alternatives(&self, term: &str) -> Result<Vec<String>, sqlx::Error> {
        let len = term.chars().count() as i64;
        let rows = sqlx::query(
            "SELECT term FROM search_vocab WHERE length(term) BETWEEN $1 AND $2 \
             ORDER BY doc DESC",
        )
        .bind(len - 1)
        .bind(len + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let candidate: String = row.try_get("term")?;
            if candidate != term && super::query::within_one_edit(&candidate, term) {
                out.push(candidate);
                if out.len() == MAX_ALTERNATIVES {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Rebuilds the index from the items themselves (`search_documents`), in one
    /// transaction: for a changed tokenizer, or an index suspected damaged.
    pub async fn rebuild(&self) -> Result<(), sqlx::Error> {
        let mut tx = crate::db::write_tx(&self.pool).await?;
        sqlx::query("DELETE FROM search_items")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO search_items (kind, item_id, title, description, tags) \
             SELECT kind, item_id, title, description, tags FROM search_documents",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO search_index (search_index) VALUES ('rebuild')")
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

fn match_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Option<Match>, sqlx::Error> {
    let bad = |what: &str| sqlx::Error::Decode(format!("search: {what}").into());
    let kind: String = row.try_get("kind")?;
    let Some(kind) = SearchKind::parse(&kind) else {
        return Err(bad("kind"));
    };
    let detail = match kind {
        SearchKind::Stream => Detail::Stream,
        SearchKind::Event => {
            let Some(state) = row.try_get::<Option<String>, _>("event_state")? else {
                return Ok(None);
            };
            let tags: String = row
                .try_get::<Option<String>, _>("event_tags")?
                .unwrap_or_default();
            Detail::Event {
                state: EventState::parse(&state).ok_or_else(|| bad("event state"))?,
                scheduled_start: row
                    .try_get::<Option<String>, _>("event_start")?
                    .unwrap_or_default(),
                stream_id: row.try_get("event_stream")?,
                owner_id: row.try_get("event_owner")?,
                tags: serde_json::from_str(&tags).map_err(|_| bad("event tags"))?,
            }
        }
        SearchKind::Asset => {
            let Some(visibility) = row.try_get::<Option<String>, _>("asset_visibility")? else {
                return Ok(None);
            };
            let projection: String = row
                .try_get::<Option<String>, _>("asset_projection")?
                .unwrap_or_default();
            Detail::Asset {
                visibility: Visibility::parse(&visibility).ok_or_else(|| bad("visibility"))?,
                owner_id: row.try_get("asset_owner")?,
                projection: Projection::parse(&projection).ok_or_else(|| bad("projection"))?,
            }
        }
    };
    Ok(Some(Match {
        kind,
        item_id: row.try_get("item_id")?,
        title: row.try_get("title")?,
        snippet: row
            .try_get::<Option<String>, _>("snippet")?
            .unwrap_or_default(),
        score: row.try_get("score")?,
        detail,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::query::{exact_expression, fuzzy_expression, terms};
    use super::*;

    async fn index() -> (tempfile::TempDir, Pool, SearchIndex) {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = crate::db::open(dir.path()).await.expect("db");
        let index = SearchIndex::new(pool.clone());
        (dir, pool, index)
    }

    async fn add_stream(pool: &Pool, id: &str, title: &str, description: &str, tags: &str) {
        sqlx::query(
            "INSERT INTO streams (id, slug, title, description, tags, projection, yaw, pitch, \
             roll, ladder, visibility, key_hash, created_at, updated_at) \
             VALUES ($1, $1, $2, $3, $4, 'equirect', 0, 0, 0, 'default', 'public', $1, 0, 0)",
        )
        .bind(id)
        .bind(title)
        .bind(description)
        .bind(tags)
        .execute(pool)
        .await
        .expect("insert stream");
    }

    async fn ids(index: &SearchIndex, q: &str) -> Vec<String> {
        let Some(expr) = exact_expression(&terms(q)) else {
            return Vec::new();
        };
        let mut ids: Vec<_> = index
            .matches(&expr, None)
            .await
            .expect("query")
            .into_iter()
            .map(|m| m.item_id)
            .collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn triggers_follow_inserts_updates_and_deletes() {
        let (_dir, pool, index) = index().await;
        add_stream(
            &pool,
            "lobby",
            "The Lobby",
            "A café tour",
            r#"["vr","music-live"]"#,
        )
        .await;
        add_stream(&pool, "hall", "Main Hall", "Talks", "[]").await;
        assert_eq!(ids(&index, "lob").await, ["lobby"]);
        assert_eq!(ids(&index, "CAFE").await, ["lobby"]);
        assert_eq!(ids(&index, "music").await, ["lobby"]);
        assert_eq!(ids(&index, "the lobby").await, ["lobby"]);
        assert!(ids(&index, "lobby hall").await.is_empty());
        sqlx::query("UPDATE streams SET title = 'Foyer' WHERE id = 'lobby'")
            .execute(&pool)
            .await
            .expect("update");
        assert!(ids(&index, "lobby").await.is_empty());
        assert_eq!(ids(&index, "foyer").await, ["lobby"]);
        sqlx::query("DELETE FROM streams WHERE id = 'hall'")
            .execute(&pool)
            .await
            .expect("delete");
        assert!(ids(&index, "hall").await.is_empty());
        index.rebuild().await.expect("rebuild");
        assert_eq!(ids(&index, "foyer").await, ["lobby"]);
        sqlx::query("INSERT INTO search_index (search_index) VALUES ('integrity-check')")
            .execute(&pool)
            .await
            .expect("the index matches its content");
    }

    #[tokio::test]
    async fn typo_alternatives_come_from_the_vocabulary() {
        let (_dir, pool, index) = index().await;
        add_stream(&pool, "lobby", "Lobby", "", "[]").await;
        add_stream(&pool, "hobby", "Hobby corner", "", "[]").await;
        let mut alts = index.alternatives("lobyy").await.expect("vocab");
        alts.sort();
        assert_eq!(alts, ["lobby"]);
        let mut alts = index.alternatives("lobby").await.expect("vocab");
        alts.sort();
        assert_eq!(alts, ["hobby"]);
        let terms = terms("lobyy");
        let expr = fuzzy_expression(&terms, &[index.alternatives("lobyy").await.expect("vocab")])
            .expect("an alternative");
        let found: Vec<_> = index
            .matches(&expr, None)
            .await
            .expect("query")
            .into_iter()
            .map(|m| m.item_id)
            .collect();
        assert_eq!(found, ["lobby"]);
    }

    /// Query words fold as the tokenizer folds the index's words, so the vocabulary
    /// lookup for typos compares like with like.
    #[tokio::test]
    async fn query_words_fold_like_the_index() {
        let (_dir, pool, _index) = index().await;
        let text = "Café Zürich ライブ İstanbul Ærø naïve ÉCOLE Straße e\u{301}te";
        add_stream(&pool, "fold", text, "", "[]").await;
        let mut vocab: Vec<String> = sqlx::query_scalar("SELECT term FROM search_vocab")
            .fetch_all(&pool)
            .await
            .expect("vocab");
        vocab.sort();
        let mut ours = terms(text);
        ours.sort();
        assert_eq!(ours, vocab);
    }

    /// Every hostile input, through the query builder, is a valid FTS5 expression.
    #[tokio::test]
    async fn hostile_input_never_breaks_the_match_expression() {
        let (_dir, pool, index) = index().await;
        add_stream(&pool, "near", "NEAR or AND", "a \"quoted\" * thing", "[]").await;
        for input in super::super::query::hostile_inputs() {
            let terms = terms(&input);
            if let Some(expr) = exact_expression(&terms) {
                index
                    .matches(&expr, None)
                    .await
                    .unwrap_or_else(|e| panic!("{input:?} → {expr}: {e}"));
                let alts = vec![vec!["near".to_string()]; terms.len()];
                let fuzzy = fuzzy_expression(&terms, &alts).expect("alternatives");
                index
                    .matches(&fuzzy, Some(SearchKind::Stream))
                    .await
                    .unwrap_or_else(|e| panic!("{input:?} → {fuzzy}: {e}"));
            }
        }
        assert_eq!(ids(&index, "NEAR(").await, ["near"]);
        assert_eq!(ids(&index, "a OR").await, ["near"]);
    }
}
