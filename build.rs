//! Checks that the front-end build (`player/dist`, built by `scripts/build-player.sh`) is
//! there before `src/api/player.rs` embeds the player with `include_bytes!`, and writes
//! `$OUT_DIR/web_files.rs`: one `include_bytes!` per file of the web app
//! (`player/dist/web`, content-hashed names), which `src/api/web.rs` serves.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What `src/api/player.rs` embeds.
const BUNDLE: [&str; 4] = [
    "player/dist/player.js",
    "player/dist/player.js.gz",
    "player/dist/player.css",
    "player/dist/player.css.gz",
];

/// The web app's folder, embedded whole. Without it the binary still builds (with a
/// warning; its pages answer 404), so that `player/openapi.json` can be regenerated
/// by a Rust test when the web app's build refuses a stale copy.
const WEB_DIR: &str = "player/dist/web";

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut missing = Vec::new();
    for file in BUNDLE {
        // `include_bytes!` already rebuilds the crate when a file changes; this makes
        // cargo run the check again when one appears or disappears.
        println!("cargo:rerun-if-changed={file}");
        if !Path::new(&manifest).join(file).is_file() {
            missing.push(file);
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    if !missing.is_empty() {
        eprintln!(
            "error: the 360 player bundle is missing ({}).\n\
             Build it first: run scripts/build-player.sh (needs Node.js >= 20 and npm).",
            missing.join(", ")
        );
        std::process::exit(1);
    }
    // Cargo rescans a directory for changes of any file under it.
    println!("cargo:rerun-if-changed={WEB_DIR}");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let web = Path::new(&manifest).join(WEB_DIR);
    if !web.join("entries.json").is_file() {
        println!(
            "cargo:warning=the web app ({WEB_DIR}) is not built: its pages will answer 404; \
             run scripts/build-player.sh"
        );
    }
    std::fs::write(out.join("web_files.rs"), web_files(&web)).expect("OUT_DIR is writable");
}

/// `pub static FILES: &[WebFile]`: every file of `dir` that has a `.gz` copy beside it,
/// by its name (the build writes no subfolders).
fn web_files(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.ends_with(".gz") && dir.join(format!("{n}.gz")).is_file())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut code = String::from("pub static FILES: &[WebFile] = &[\n");
    for name in names {
        let path = dir.join(&name);
        let path = path.display();
        writeln!(
            code,
            "    WebFile {{ name: {name:?}, body: include_bytes!({body:?}), gzip: include_bytes!({gz:?}) }},",
            body = path.to_string(),
            gz = format!("{path}.gz"),
        )
        .expect("writing to a String");
    }
    code.push_str("];\n");
    code
}
