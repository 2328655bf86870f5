//! Where an asset's files live: `<data_dir>/assets/<id>/source` (the uploaded file)
//! and one file per rendition beside it. Writers make `<name>.tmp` and rename it, so a
//! file with its final name is always complete.

use std::path::{Path, PathBuf};

use super::RenditionKind;

/// The folder of every asset.
pub fn root(data_dir: &Path) -> PathBuf {
    data_dir.join("assets")
}

/// The folder of asset `id`. Ids are server-made (`as_<hex>`), never client input.
pub fn dir(data_dir: &Path, id: &str) -> PathBuf {
    root(data_dir).join(id)
}

pub fn source(data_dir: &Path, id: &str) -> PathBuf {
    dir(data_dir, id).join("source")
}

pub fn rendition(data_dir: &Path, id: &str, kind: RenditionKind) -> PathBuf {
    dir(data_dir, id).join(kind.file_name())
}

/// The temp file a writer of `path` writes before renaming.
pub fn temp_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}
