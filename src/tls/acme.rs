//! `mode = "acme"`: certificates for public host names from an ACME CA (RFC 8555) with
//! instant-acme. HTTP-01 challenges are answered by our own router at
//! `/.well-known/acme-challenge/{token}` on the plain HTTP port; the account and the
//! certificate are kept in `<data_dir>/tls/acme/`, and the reload watcher serves a new
//! certificate as soon as it is written. Renewal is due when less than a third of the
//! lifetime is left; failures are logged and retried with backoff.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use tokio_util::sync::CancellationToken;

use super::reload::CertFiles;
use super::{pem_files, validity, TlsError};
use crate::api::problem::Problem;
use crate::api::AppState;
use crate::config::TlsConfig;

/// First retry after a failed order; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How long one order may take to become ready, and its certificate to be issued.
const ORDER_TIMEOUT: Duration = Duration::from_secs(90);

/// The HTTP-01 answers being offered: token → key authorization (RFC 8555 §8.3).
#[derive(Debug, Default)]
pub struct Challenges(RwLock<HashMap<String, String>>);

impl Challenges {
    fn offer(&self, token: String, key_authorization: String) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token, key_authorization);
    }

    fn withdraw_all(&self) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn answer(&self, token: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }
}

/// `GET /.well-known/acme-challenge/{token}`: the key authorization as text/plain, 404
/// for a token not being offered.
pub async fn challenge(State(state): State<AppState>, UrlPath(token): UrlPath<String>) -> Response {
    match state.acme.as_deref().and_then(|c| c.answer(&token)) {
        Some(answer) => ([(header::CONTENT_TYPE, "text/plain")], answer).into_response(),
        None => Problem::not_found("no such ACME challenge").into_response(),
    }
}

/// What the ACME task needs of the config.
#[derive(Clone, Debug)]
pub struct AcmeSettings {
    pub directory: String,
    pub domains: Vec<String>,
    pub contact: Vec<String>,
    pub ca_root: Option<PathBuf>,
    pub check_every: Duration,
    /// `<data_dir>/tls/acme`.
    pub dir: PathBuf,
}

impl AcmeSettings {
    pub fn new(config: &TlsConfig, data_dir: &Path) -> Self {
        Self {
            directory: config.acme_directory.clone(),
            domains: config.domains.clone(),
            contact: config.contact.clone(),
            ca_root: config.acme_ca_root.clone(),
            check_every: Duration::from_secs(config.acme_check_interval_s),
            dir: data_dir.join("tls").join("acme"),
        }
    }

    pub fn files(&self) -> CertFiles {
        CertFiles {
            cert: self.dir.join("server.crt"),
            key: self.dir.join("server.key"),
        }
    }

    /// One account file per directory URL: another CA is another account.
    fn account_file(&self) -> PathBuf {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.directory.as_bytes());
        let short: String = digest.as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir.join(format!("account-{short}.json"))
    }
}

#[derive(Debug, thiserror::Error)]
enum AcmeError {
    #[error("ACME: {0}")]
    Protocol(#[from] instant_acme::Error),
    #[error("ACME: {0}")]
    Order(String),
    #[error(transparent)]
    Local(#[from] TlsError),
}

/// Keeps the certificate current until `shutdown`: ordered at once when missing or
/// due, then checked every `check_every`; a failure is retried after a backoff.
pub async fn run(settings: AcmeSettings, challenges: Arc<Challenges>, shutdown: CancellationToken) {
    let mut backoff = MIN_BACKOFF;
    loop {
        // An order in flight is abandoned at shutdown (the CA lets it expire).
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return,
            attempt = renew_if_due(&settings, &challenges) => attempt,
        };
        let wait = match attempt {
            Ok(()) => {
                backoff = MIN_BACKOFF;
                settings.check_every
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "ACME certificate order failed");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        challenges.withdraw_all();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn renew_if_due(settings: &AcmeSettings, challenges: &Challenges) -> Result<(), AcmeError> {
    let files = settings.files();
    let now = time::OffsetDateTime::now_utc();
    if validity::server_is_current(&files.cert, &settings.domains, now) {
        return Ok(());
    }
    let account = account(settings).await?;
    let identifiers: Vec<Identifier> = settings
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(AcmeError::Order(format!("authorization is {other:?}"))),
            }
            let mut challenge = authorization
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| AcmeError::Order("the CA offers no http-01 challenge".into()))?;
            challenges.offer(
                challenge.token.clone(),
                challenge.key_authorization().as_str().to_string(),
            );
            challenge.set_ready().await?;
        }
    }
    let retries = RetryPolicy::new().timeout(ORDER_TIMEOUT);
    let status = order.poll_ready(&retries).await?;
    if status != OrderStatus::Ready {
        return Err(AcmeError::Order(format!("order is {status:?}, not ready")));
    }
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::new(settings.domains.clone()).map_err(generate)?;
    params.distinguished_name = DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(generate)?;
    order.finalize_csr(csr.der()).await?;
    let chain_pem = order.poll_certificate(&retries).await?;
    store(&files, &chain_pem, &key)?;
    tracing::info!(domains = %settings.domains.join(" "), "ACME certificate issued");
    Ok(())
}

/// Checks that the issued chain goes with our key, then writes key and chain.
fn store(files: &CertFiles, chain_pem: &str, key: &KeyPair) -> Result<(), TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |why: String| TlsError::File {
        path: files.cert.display().to_string(),
        why,
    };
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("issued chain: {e}")))?;
    let der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| bad(e.to_string()))?;
    pem_files::from_der(chain, der).map_err(bad)?;
    // The key first: the watcher retries until both files belong together.
    super::private_files::write_key(&files.key, key)?;
    super::private_files::write_public(&files.cert, chain_pem.as_bytes())
}

/// The stored account for this directory, or a new one (stored 0600: its key is the
/// account).
async fn account(settings: &AcmeSettings) -> Result<Account, AcmeError> {
    super::private_files::create_private_dir(&settings.dir)?;
    let builder = || match &settings.ca_root {
        Some(root) => Account::builder_with_root(root),
        None => Account::builder(),
    };
    let path = settings.account_file();
    if let Ok(json) = std::fs::read(&path) {
        match serde_json::from_slice::<AccountCredentials>(&json) {
            Ok(credentials) => return Ok(builder()?.from_credentials(credentials).await?),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable ACME account; creating a new one")
            }
        }
    }
    let contact: Vec<&str> = settings.contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await?;
    let json = serde_json::to_vec(&credentials)
        .map_err(|e| AcmeError::Order(format!("account credentials: {e}")))?;
    crate::data_dir::write_secret(&path, &json).map_err(|e| TlsError::File {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    tracing::info!(directory = %settings.directory, "ACME account created");
    Ok(account)
}

fn generate(e: rcgen::Error) -> AcmeError {
    AcmeError::Local(TlsError::Generate(e.to_string()))
}

/// A certificate to answer handshakes with until the first ACME certificate arrives
/// (self-signed for the domains; browsers warn, which is true until then).
pub fn placeholder(domains: &[String]) -> Result<rustls::sign::CertifiedKey, TlsError> {
    use rustls::pki_types::PrivateKeyDer;
    let key = KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let cert = CertificateParams::new(domains.to_vec())
        .and_then(|p| p.self_signed(&key))
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    pem_files::from_der(vec![cert.der().clone()], der).map_err(TlsError::Generate)
}
