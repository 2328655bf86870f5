//! The one place that decides: every API route and every HLS request asks the
//! [`Authenticator`] with the credentials it found (STYLE §9). RTMP publishing asks
//! the catalog through [`crate::streams::StreamDirectory::by_publish_key`].

use std::time::Instant;

use super::disabled::DisabledAccounts;
use super::rate_limit::KeyedLimiter;
use super::tokens::{Audience, Claims, TokenError, TokenKeys};
use super::verified::VerifiedTokens;
use super::Role;
use crate::config::AuthConfig;
use crate::db::Pool;
use crate::streams::{StreamDef, Visibility};

/// An authenticated API caller (from a valid access token).
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: String,
    pub role: Role,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller may change `stream`: admins all, broadcasters their own.
    pub fn may_manage(&self, stream: &StreamDef) -> bool {
        self.manages_owned_by(stream.owner_id.as_deref())
    }

    /// Whether the caller manages what `owner_id` owns (a stream, an asset): admins
    /// everything, broadcasters their own, viewers nothing.
    pub fn manages_owned_by(&self, owner_id: Option<&str>) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Broadcaster => owner_id == Some(self.user_id.as_str()),
            Role::Viewer => false,
        }
    }

    /// Whether `stream` appears to the caller in lists and reads.
    pub fn may_see(&self, stream: &StreamDef) -> bool {
        stream.visibility == Visibility::Public || self.may_manage(stream)
    }
}

/// Whether an item (stream or asset) with `visibility`, owned by `owner_id`, appears
/// to `caller` in lists and search results: public ones to everyone, unlisted and
/// private ones only to who manages them. The one rule of `GET /api/v1/streams`,
/// `GET /api/v1/assets` and `GET /api/v1/search`.
pub fn listed_for(caller: Option<&Caller>, visibility: Visibility, owner_id: Option<&str>) -> bool {
    visibility == Visibility::Public || caller.is_some_and(|c| c.manages_owned_by(owner_id))
}

/// Whether `stream` may be reached by `caller` through its id or slug (a link, a
/// subscription): everything but a private stream, which only its managers reach.
pub fn reachable_by(caller: &Caller, stream: &StreamDef) -> bool {
    stream.visibility != Visibility::Private || caller.may_manage(stream)
}

/// A request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No usable credentials: 401.
    Unauthenticated(&'static str),
    /// Valid credentials that do not allow this: 403.
    Forbidden(&'static str),
}

/// Which login/refresh attempt is being limited.
pub enum Attempt<'a> {
    Address(std::net::IpAddr),
    Account(&'a str),
}

/// Accounts, token keys and rate limits, shared by every request.
pub struct Authenticator {
    pub pool: Pool,
    pub keys: TokenKeys,
    pub config: AuthConfig,
    /// Accounts whose tokens are refused before they expire.
    pub disabled: DisabledAccounts,
    by_address: KeyedLimiter,
    by_account: KeyedLimiter,
    /// Playback tokens already verified (HLS requests carry one each).
    playback_tokens: VerifiedTokens,
}

impl Authenticator {
    pub fn new(pool: Pool, keys: TokenKeys, config: AuthConfig) -> Self {
        Self {
            by_address: KeyedLimiter::new(config.address_burst, config.address_per_minute),
            by_account: KeyedLimiter::new(config.account_burst, config.account_per_minute),
            playback_tokens: VerifiedTokens::new(
                super::verified::DEFAULT_CAPACITY,
                super::tokens::LEEWAY_S,
            ),
            pool,
            keys,
            config,
            disabled: DisabledAccounts::default(),
        }
    }

    /// Takes one attempt from the bucket of `attempt`; `Err(wait)` when exhausted.
    pub fn rate_limit(&self, attempt: Attempt<'_>) -> Result<(), std::time::Duration> {
        let now = Instant::now();
        match attempt {
            Attempt::Address(ip) => self.by_address.check(&ip.to_string(), now),
            Attempt::Account(name) => self.by_account.check(name, now),
        }
    }

    /// The caller of an API request: `Ok(None)` without a token, `Err` with one that
    /// is not a valid access token.
    pub fn caller(&self, bearer: Option<&str>) -> Result<Option<Caller>, Denied> {
        let Some(token) = bearer else {
            return Ok(None);
        };
        let claims = self.keys.verify(token, Audience::Api).map_err(|e| {
            tracing::debug!(error = %e, "access token refused");
            Denied::Unauthenticated("the access token is invalid or expired")
        })?;
        let role = claims
            .role
            .ok_or(Denied::Unauthenticated("the access token has no role"))?;
        if self.disabled.contains(&claims.sub) {
            return Err(Denied::Unauthenticated("this account is disabled"));
        }
        Ok(Some(Caller {
            user_id: claims.sub,
            role,
        }))
    }

    /// Whether a playback request for `stream` may go on. Public and unlisted streams
    /// need nothing; private ones a playback token whose `stream` claim is theirs.
    /// The claims of the verified token come back (`None` when none was needed), so the
    /// audience analytics need not verify it again.
    pub fn playback(
        &self,
        stream: &StreamDef,
        token: Option<&str>,
    ) -> Result<Option<Claims>, Denied> {
        self.playback_of(stream.visibility, token, |claims| {
            claims.stream.as_deref() == Some(stream.id.as_str())
        })
    }

    /// The same rule for an on-demand asset: a private one needs a playback token
    /// whose `asset` claim is its id.
    pub fn playback_asset(
        &self,
        asset_id: &str,
        visibility: Visibility,
        token: Option<&str>,
    ) -> Result<Option<Claims>, Denied> {
        self.playback_of(visibility, token, |claims| {
            claims.asset.as_deref() == Some(asset_id)
        })
    }

    fn playback_of(
        &self,
        visibility: Visibility,
        token: Option<&str>,
        for_this: impl Fn(&Claims) -> bool,
    ) -> Result<Option<Claims>, Denied> {
        if visibility != Visibility::Private {
            return Ok(None);
        }
        let token = token.ok_or(Denied::Unauthenticated(
            "this is private: a playback token is required",
        ))?;
        let claims = self.verify_playback(token).map_err(|e| {
            tracing::debug!(error = %e, "playback token refused");
            Denied::Unauthenticated("the playback token is invalid or expired")
        })?;
        if self.disabled.contains(&claims.sub) {
            return Err(Denied::Unauthenticated("this account is disabled"));
        }
        if !for_this(&claims) {
            return Err(Denied::Forbidden(
                "the playback token is for something else",
            ));
        }
        Ok(Some(claims))
    }

    /// The claims of `token` if it is a valid playback token for `stream` (any
    /// visibility); `None` otherwise. For counting viewers of public streams, whose
    /// playback needs no token.
    pub fn playback_claims(&self, stream: &StreamDef, token: &str) -> Option<Claims> {
        let claims = self.verify_playback(token).ok()?;
        (claims.stream.as_deref() == Some(stream.id.as_str())).then_some(claims)
    }

    /// The same for asset `asset_id`.
    pub fn playback_asset_claims(&self, asset_id: &str, token: &str) -> Option<Claims> {
        let claims = self.verify_playback(token).ok()?;
        (claims.asset.as_deref() == Some(asset_id)).then_some(claims)
    }

    /// A playback token's claims, its signature checked once while it lives.
    fn verify_playback(&self, token: &str) -> Result<Claims, TokenError> {
        let now = crate::db::now().max(0) as u64;
        self.playback_tokens
            .get_or_verify(token, now, |t| self.keys.verify(t, Audience::Playback))
    }

    /// An access token for `user_id`.
    pub fn access_token(
        &self,
        user_id: &str,
        role: Role,
    ) -> Result<String, super::tokens::TokenError> {
        let claims = Claims {
            role: Some(role),
            ..self
                .keys
                .claims(Audience::Api, user_id, self.config.access_ttl_s)
        };
        self.keys.sign(&claims)
    }

    /// A playback token for asset `asset_id`, requested by `user_id`.
    pub fn asset_playback_token(
        &self,
        user_id: &str,
        asset_id: &str,
    ) -> Result<String, super::tokens::TokenError> {
        let claims = Claims {
            asset: Some(asset_id.to_string()),
            ..self
                .keys
                .claims(Audience::Playback, user_id, self.config.playback_ttl_s)
        };
        self.keys.sign(&claims)
    }

    /// A playback token for `stream`, requested by `user_id`.
    pub fn playback_token(
        &self,
        user_id: &str,
        stream: &StreamDef,
    ) -> Result<String, super::tokens::TokenError> {
        let claims = Claims {
            stream: Some(stream.id.clone()),
            // Every token is its own viewer session.
            sid: Some(crate::db::new_id("vs")),
            ..self
                .keys
                .claims(Audience::Playback, user_id, self.config.playback_ttl_s)
        };
        self.keys.sign(&claims)
    }
}
