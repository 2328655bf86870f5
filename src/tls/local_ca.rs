//! `mode = "local-ca"`: a certificate authority of this server's own, generated once in
//! `<data_dir>/tls/`, and a server certificate it signs for the names in
//! [`super::names`]. Devices trust the CA once (from `/ca.crt`); the server certificate
//! is reissued before it expires or when the machine's addresses change, and the
//! reload watcher picks up the new files like any other certificate change.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::private_files::{create_private_dir, write_key, write_public};
use super::reload::CertFiles;
use super::validity::{not_after, server_is_current};
use super::TlsError;

/// Ten years: devices trust the CA once.
const CA_LIFETIME: Duration = Duration::days(3650);
/// 397 days, the longest server certificate lifetime Apple platforms accept.
const SERVER_LIFETIME: Duration = Duration::days(397);

/// The CA devices are asked to trust and the files the server certificate is served
/// from.
#[derive(Clone, Debug)]
pub struct LocalCa {
    /// The CA certificate, PEM, as `/ca.crt` serves it.
    pub ca_pem: String,
    pub files: CertFiles,
}

struct Paths {
    ca_cert: PathBuf,
    ca_key: PathBuf,
    server: CertFiles,
}

impl Paths {
    fn in_dir(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server: CertFiles {
                cert: dir.join("server.crt"),
                key: dir.join("server.key"),
            },
        }
    }
}

/// Loads the CA and server certificate from `dir`, generating or reissuing whatever is
/// missing, expiring (less than a third of its lifetime left) or does not cover
/// `names`. Blocking (file I/O, key generation).
pub fn ensure(dir: &Path, names: &[String], now: OffsetDateTime) -> Result<LocalCa, TlsError> {
    create_private_dir(dir)?;
    let paths = Paths::in_dir(dir);
    let (ca_pem, ca_key, new_ca) = match load_ca(&paths, now)? {
        Some((pem, key)) => (pem, key, false),
        None => {
            let (pem, key) = new_ca(now)?;
            write_public(&paths.ca_cert, pem.as_bytes())?;
            write_key(&paths.ca_key, &key)?;
            tracing::info!(path = %paths.ca_cert.display(), "generated a local certificate authority");
            (pem, key, true)
        }
    };
    if new_ca || !server_is_current(&paths.server.cert, names, now) {
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).map_err(rcgen_error)?;
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let cert = server_params(names, now)?
            .signed_by(&key, &issuer)
            .map_err(rcgen_error)?;
        // The key first: the watcher retries until both files belong together.
        write_key(&paths.server.key, &key)?;
        write_public(&paths.server.cert, cert.pem().as_bytes())?;
        tracing::info!(names = %names.join(" "), "issued the local server certificate");
    }
    Ok(LocalCa {
        ca_pem,
        files: paths.server,
    })
}

fn load_ca(paths: &Paths, now: OffsetDateTime) -> Result<Option<(String, KeyPair)>, TlsError> {
    let (Ok(pem), Ok(key_pem)) = (
        std::fs::read_to_string(&paths.ca_cert),
        std::fs::read_to_string(&paths.ca_key),
    ) else {
        return Ok(None);
    };
    let key = KeyPair::from_pem(&key_pem).map_err(|e| TlsError::File {
        path: paths.ca_key.display().to_string(),
        why: e.to_string(),
    })?;
    // A CA that would expire before the next server certificate does is replaced;
    // devices then trust the new one (the page says so).
    let lasts = not_after(&pem).is_some_and(|end| end - now > SERVER_LIFETIME);
    Ok(lasts.then_some((pem, key)))
}

fn new_ca(now: OffsetDateTime) -> Result<(String, KeyPair), TlsError> {
    let key = KeyPair::generate().map_err(rcgen_error)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    let host = super::names::host_name().unwrap_or_else(|| "localhost".into());
    dn.push(DnType::CommonName, format!("panocast local CA ({host})"));
    dn.push(DnType::OrganizationName, "panocast");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + CA_LIFETIME;
    params.serial_number = Some(random_serial()?);
    let cert = params.self_signed(&key).map_err(rcgen_error)?;
    Ok((cert.pem(), key))
}

fn server_params(names: &[String], now: OffsetDateTime) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(names.to_vec()).map_err(rcgen_error)?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!(
            "panocast on {}",
            super::names::host_name().unwrap_or_else(|| "localhost".into())
        ),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + SERVER_LIFETIME;
    params.serial_number = Some(random_serial()?);
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// A positive 16-byte serial (RFC 5280 §4.1.2.2: at most 20 bytes, positive).
fn random_serial() -> Result<SerialNumber, TlsError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TlsError::Generate("no randomness for a serial number".into()))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

fn rcgen_error(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into(), "pano.local".into()]
    }

    #[test]
    fn a_second_start_reuses_the_ca_and_the_server_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let first = ensure(dir.path(), &names(), now).unwrap();
        let server = std::fs::read(&first.files.cert).unwrap();
        let again = ensure(dir.path(), &names(), now).unwrap();
        assert_eq!(first.ca_pem, again.ca_pem);
        assert_eq!(server, std::fs::read(&again.files.cert).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for key in ["ca.key", "server.key"] {
                let mode = std::fs::metadata(dir.path().join(key))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{key}");
            }
        }
    }

    #[test]
    fn the_server_certificate_is_reissued_when_a_third_of_its_life_is_left_or_a_name_is_new() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let first = ensure(dir.path(), &names(), now).unwrap();
        let issued = std::fs::read(&first.files.cert).unwrap();
        let later = now + Duration::days(200);
        ensure(dir.path(), &names(), later).unwrap();
        assert_eq!(
            issued,
            std::fs::read(&first.files.cert).unwrap(),
            "half its life is left"
        );
        let late = now + Duration::days(300);
        ensure(dir.path(), &names(), late).unwrap();
        let renewed = std::fs::read(&first.files.cert).unwrap();
        assert_ne!(issued, renewed, "less than a third left");
        let (_, end, _) =
            crate::tls::validity::validity_and_names(&String::from_utf8(renewed.clone()).unwrap())
                .unwrap();
        assert!(end > late + Duration::days(390));

        let mut more = names();
        more.push("192.168.7.9".into());
        let again = ensure(dir.path(), &more, late).unwrap();
        let pem = std::fs::read_to_string(&again.files.cert).unwrap();
        let (_, _, covered) = crate::tls::validity::validity_and_names(&pem).unwrap();
        assert!(covered.contains(&"192.168.7.9".to_string()), "{covered:?}");
        assert_eq!(again.ca_pem, first.ca_pem, "the CA stays");
    }
}
