//! Which accounts are disabled, kept in memory so that every bearer token can be
//! checked against it without a database read (playback requests are hot). Loaded
//! from `users.disabled_at` at start; `PATCH /api/v1/users/{user}` changes it right
//! after its write commits, so a disabled account's unexpired tokens stop working
//! with that answer rather than at their expiry.

use std::collections::HashSet;
use std::sync::RwLock;

use crate::db::Pool;

/// The ids of disabled accounts.
#[derive(Default)]
pub struct DisabledAccounts {
    ids: RwLock<HashSet<String>>,
}

impl DisabledAccounts {
    /// Reads every disabled account from the database, replacing what was known.
    pub async fn load(&self, pool: &Pool) -> Result<(), sqlx::Error> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM users WHERE disabled_at IS NOT NULL")
                .fetch_all(pool)
                .await?;
        *self.ids.write().unwrap_or_else(|p| p.into_inner()) = ids.into_iter().collect();
        Ok(())
    }

    /// Records that `user_id` is now disabled or enabled.
    pub fn set(&self, user_id: &str, disabled: bool) {
        let mut ids = self.ids.write().unwrap_or_else(|p| p.into_inner());
        if disabled {
            ids.insert(user_id.to_owned());
        } else {
            ids.remove(user_id);
        }
    }

    pub fn contains(&self, user_id: &str) -> bool {
        let ids = self.ids.read().unwrap_or_else(|p| p.into_inner());
        // Nearly always empty: no hashing then.
        !ids.is_empty() && ids.contains(user_id)
    }
}
