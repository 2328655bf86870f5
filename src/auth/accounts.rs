//! Users and refresh tokens in the database.
//!
//! A login starts a refresh-token *family*. Refreshing marks the presented token used
//! and issues its successor in the same family. Presenting a used token again means it
//! was copied: the whole family is revoked, so neither the thief nor the user can go
//! on without logging in (OAuth 2.0 Security BCP, RFC 9700 4.14.2). Logout revokes the
//! family too.

use serde::Serialize;
use sqlx::Row;

use super::{password, random_secret, secret_hash, Role};
use crate::db::{self, Pool};

/// An account, without its password hash.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    /// Where mail for the account goes (welcome, subscriptions); absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// A disabled account cannot log in or refresh its tokens (admins set it with
    /// `PATCH /api/v1/users/{user}`).
    pub disabled: bool,
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("a user named {0} already exists")]
    Taken(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("password hashing failed")]
    Hash,
}

/// A refresh token was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshRefusal {
    /// Unknown, expired or revoked.
    Invalid,
    /// Already used: the family is now revoked.
    Reused,
}

/// Whether `name` may be a user name: 3–64 characters `a-z0-9._-`.
pub fn is_valid_username(name: &str) -> bool {
    (3..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// The longest address accepted (RFC 5321's path limit less the brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// `email` trimmed, if it is an address mail can be sent to.
pub fn valid_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim();
    if email.len() > MAX_EMAIL_LEN || email.parse::<lettre::Address>().is_err() {
        return Err(AccountError::Invalid(format!(
            "email must be an address like name@example.com of at most {MAX_EMAIL_LEN} characters"
        )));
    }
    Ok(email.to_string())
}

fn user_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<User, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: Role::parse(&role)
            .ok_or_else(|| sqlx::Error::Decode(format!("role {role}").into()))?,
        email: row.try_get("email")?,
        created_at: row.try_get("created_at")?,
        disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
    })
}

/// Creates a user without an email address. Hashes on a blocking thread.
pub async fn create_user(
    pool: &Pool,
    username: &str,
    password_text: &str,
    role: Role,
) -> Result<User, AccountError> {
    create_user_with_email(pool, username, password_text, role, None).await
}

/// Creates a user, with `email` when given (validated). Hashes on a blocking thread.
pub async fn create_user_with_email(
    pool: &Pool,
    username: &str,
    password_text: &str,
    role: Role,
    email: Option<&str>,
) -> Result<User, AccountError> {
    let email = email.map(valid_email).transpose()?;
    if !is_valid_username(username) {
        return Err(AccountError::Invalid(
            "the user name needs 3-64 characters a-z, 0-9, '.', '_' or '-'".into(),
        ));
    }
    password::check_strength(password_text).map_err(AccountError::Invalid)?;
    let pw = password_text.to_string();
    let phc = tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|_| AccountError::Hash)?
        .map_err(|_| AccountError::Hash)?;
    let user = User {
        id: db::new_id("usr"),
        username: username.to_string(),
        role,
        email,
        created_at: db::now(),
        disabled: false,
    };
    // The account and its `user.created` message commit together.
    let mut tx = crate::db::write_tx(pool).await?;
    let inserted = sqlx::query(
        "INSERT INTO users (id, username, password_hash, role, email, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&user.id)
    .bind(&user.username)
    .bind(&phc)
    .bind(role.as_str())
    .bind(&user.email)
    .bind(user.created_at)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {
            crate::notify::outbox::enqueue(
                &mut tx,
                crate::notify::webhooks::MessageType::UserCreated.as_str(),
                &crate::notify::payloads::UserCreated { user: user.clone() },
            )
            .await?;
            tx.commit().await?;
            Ok(user)
        }
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(AccountError::Taken(username.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Changes `id`'s role and/or disabled state; `None` when there is no such user.
/// Disabling revokes every refresh token of the account, so no session of it goes on
/// past its current access token.
pub async fn update_user(
    pool: &Pool,
    id: &str,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<Option<User>, sqlx::Error> {
    let now = db::now();
    let mut tx = crate::db::write_tx(pool).await?;
    let updated = sqlx::query(
        "UPDATE users SET role = COALESCE($2, role), \
         disabled_at = CASE WHEN $3 IS NULL THEN disabled_at WHEN $3 THEN COALESCE(disabled_at, $4) ELSE NULL END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(role.map(Role::as_str))
    .bind(disabled)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    if disabled == Some(true) {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    let user = sqlx::query(
        "SELECT id, username, role, email, created_at, disabled_at FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| user_from_row(&r))
    .transpose()?;
    tx.commit().await?;
    Ok(user)
}

/// Number of users.
pub async fn count_users(pool: &Pool) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM users")
        .fetch_one(pool)
        .await?
        .try_get("n")
}

pub async fn user_by_id(pool: &Pool, id: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query(
        "SELECT id, username, role, email, created_at, disabled_at FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .map(|r| user_from_row(&r))
    .transpose()
}

/// Users ordered by name, after `cursor` (a user name), at most `limit`.
pub async fn list_users(
    pool: &Pool,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query(
        "SELECT id, username, role, email, created_at, disabled_at FROM users WHERE username > $1 ORDER BY username LIMIT $2",
    )
    .bind(cursor.unwrap_or(""))
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(user_from_row)
    .collect()
}

/// The user if `password_text` is theirs. Unknown names cost one argon2 verification
/// too, so timing does not reveal which names exist.
pub async fn check_password(
    pool: &Pool,
    username: &str,
    password_text: &str,
) -> Result<Option<User>, AccountError> {
    let row = sqlx::query(
        "SELECT id, username, role, email, created_at, disabled_at, password_hash FROM users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?;
    let (user, phc) = match &row {
        Some(r) => (
            Some(user_from_row(r)?),
            r.try_get::<String, _>("password_hash")?,
        ),
        None => (None, password::dummy_hash().to_string()),
    };
    let pw = password_text.to_string();
    let ok = tokio::task::spawn_blocking(move || password::verify(&pw, &phc))
        .await
        .map_err(|_| AccountError::Hash)?;
    // A disabled account is refused like a wrong password, after the same work.
    Ok(user.filter(|u| ok && !u.disabled))
}

/// A new refresh token for `user_id` in `family` (a new family when `None`); returns
/// the token, shown to the client once.
pub async fn issue_refresh<'c, E>(
    executor: E,
    user_id: &str,
    family: Option<&str>,
    ttl_s: u64,
) -> Result<String, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let token = random_secret(32);
    let now = db::now();
    let family = family.map_or_else(|| db::new_id("fam"), str::to_string);
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(db::new_id("rt"))
    .bind(&family)
    .bind(user_id)
    .bind(secret_hash(&token))
    .bind(now)
    .bind(now + ttl_s as i64)
    .execute(executor)
    .await?;
    Ok(token)
}

/// Exchanges `token` for a successor in its family; returns the user and the new
/// token. Reuse of a used token revokes the family.
pub async fn rotate_refresh(
    pool: &Pool,
    token: &str,
    ttl_s: u64,
) -> Result<Result<(User, String), RefreshRefusal>, sqlx::Error> {
    let now = db::now();
    let mut tx = crate::db::write_tx(pool).await?;
    let row = sqlx::query(
        "SELECT id, family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(secret_hash(token))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Err(RefreshRefusal::Invalid));
    };
    let id: String = row.try_get("id")?;
    let family: String = row.try_get("family_id")?;
    let user_id: String = row.try_get("user_id")?;
    let expires_at: i64 = row.try_get("expires_at")?;
    let used_at: Option<i64> = row.try_get("used_at")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    if revoked_at.is_some() {
        return Ok(Err(RefreshRefusal::Invalid));
    }
    // Marking it used only if nobody did first makes two racing refreshes with the
    // same token count as reuse, as they should.
    let claimed = used_at.is_none()
        && sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
    if !claimed {
        revoke_family_in(&mut *tx, &family, now).await?;
        tx.commit().await?;
        tracing::warn!(family = %family, user = %user_id, "refresh token reused: family revoked");
        return Ok(Err(RefreshRefusal::Reused));
    }
    if expires_at <= now {
        return Ok(Err(RefreshRefusal::Invalid));
    }
    let Some(user) = sqlx::query(
        "SELECT id, username, role, email, created_at, disabled_at FROM users WHERE id = $1",
    )
    .bind(&user_id)
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| user_from_row(&r))
    .transpose()?
    .filter(|u| !u.disabled) else {
        // The used token stays spent: a disabled account's logins end here.
        tx.commit().await?;
        return Ok(Err(RefreshRefusal::Invalid));
    };
    let next = issue_refresh(&mut *tx, &user_id, Some(&family), ttl_s).await?;
    tx.commit().await?;
    Ok(Ok((user, next)))
}

/// Revokes the family of `token`; false if the token is unknown.
pub async fn revoke_by_token(pool: &Pool, token: &str) -> Result<bool, sqlx::Error> {
    let family: Option<String> =
        sqlx::query("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(secret_hash(token))
            .fetch_optional(pool)
            .await?
            .map(|r| r.try_get("family_id"))
            .transpose()?;
    let Some(family) = family else {
        return Ok(false);
    };
    revoke_family_in(pool, &family, db::now()).await?;
    Ok(true)
}

async fn revoke_family_in<'c, E>(executor: E, family: &str, now: i64) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family)
    .execute(executor)
    .await?;
    Ok(())
}
