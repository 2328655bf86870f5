//! Password hashing: argon2id with the crate's default (OWASP) parameters, PHC strings
//! in the database so parameters can change without a migration.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest accepted password, in characters (Unicode scalar values, as JSON Schema's
/// `minLength` counts them, so the API document can state the rule).
pub const MIN_LEN: usize = 10;
/// Longest accepted password, in characters (bounds hashing work per request: at
/// most 1 KiB of UTF-8).
pub const MAX_LEN: usize = 256;

/// Why a password is refused at account creation.
pub fn check_strength(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(format!("the password needs at least {MIN_LEN} characters"));
    }
    if n > MAX_LEN {
        return Err(format!(
            "the password may have at most {MAX_LEN} characters"
        ));
    }
    Ok(())
}

/// The PHC string of `password` (argon2id, random salt). CPU-heavy: call from
/// `spawn_blocking`.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches `phc` (constant-time comparison inside argon2).
/// CPU-heavy: call from `spawn_blocking`.
pub fn verify(password: &str, phc: &str) -> bool {
    // Checked in bytes first so that a huge body costs no character count.
    if password.len() > 4 * MAX_LEN || password.chars().count() > MAX_LEN {
        return false;
    }
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash to verify against when the account does not exist, so that a login for an
/// unknown name costs as much as one for a known name.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("not-a-real-password").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let phc = hash("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterY", &phc));
        assert!(!verify("x", "not a phc string"));
        assert!(check_strength("short").is_err());
        assert!(check_strength("long enough pw").is_ok());
        // Characters, not bytes: 256 four-byte characters pass, 257 do not.
        assert!(check_strength(&"\u{1F600}".repeat(MAX_LEN)).is_ok());
        assert!(check_strength(&"\u{1F600}".repeat(MAX_LEN + 1)).is_err());
        assert!(check_strength(&"é".repeat(MIN_LEN)).is_ok());
        assert!(check_strength(&"é".repeat(MIN_LEN - 1)).is_err());
    }
}
