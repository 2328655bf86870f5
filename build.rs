//! Checks that the player bundle (`player/dist`, built by `scripts/build-player.sh`) is
//! there before `src/api/player.rs` embeds it with `include_bytes!`.

use std::path::Path;

/// What `src/api/player.rs` embeds.
const BUNDLE: [&str; 4] = [
    "player/dist/player.js",
    "player/dist/player.js.gz",
    "player/dist/player.css",
    "player/dist/player.css.gz",
];

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
}
