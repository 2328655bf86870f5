//! Files of the TLS state in the data directory: a private folder, and replacements a
//! reader never sees half-written.

use std::path::Path;

use super::TlsError;

pub fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let fail = |e: std::io::Error| TlsError::File {
        path: dir.display().to_string(),
        why: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    Ok(())
}

pub fn write_key(path: &Path, key: &rcgen::KeyPair) -> Result<(), TlsError> {
    replace_file(path, key.serialize_pem().as_bytes(), true)
}

pub fn write_public(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    replace_file(path, bytes, false)
}

/// Writes beside `path` and renames over it, so a reader sees the old file or the new
/// one, never half of one; secrets are 0600 from the first byte.
pub fn replace_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), TlsError> {
    let fail = |e: std::io::Error| TlsError::File {
        path: path.display().to_string(),
        why: e.to_string(),
    };
    let temp = path.with_extension("new");
    if secret {
        crate::data_dir::write_secret(&temp, bytes).map_err(fail)?;
    } else {
        std::fs::write(&temp, bytes).map_err(fail)?;
    }
    std::fs::rename(&temp, path).map_err(fail)
}
