//! The panocast side of the MP3 figure of `benches/vod/run.sh`: the server's own
//! extraction passes (`assets::extract::probe`, then `render` to MP3) on one file, in
//! this process, so the script can count this process's CPU seconds alone.
//!
//! ```text
//! cargo bench --bench vod_mp3 -- --input SRC.mp4 --output OUT.mp3
//! ```

use std::path::PathBuf;

use panocast::assets::extract::{probe, render, Output};

fn main() {
    let mut input = None;
    let mut output = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--input" => input = it.next().map(PathBuf::from),
            "--output" => output = it.next().map(PathBuf::from),
            // cargo bench adds this; cargo test runs the target with no arguments.
            "--bench" => {}
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let (Some(input), Some(output)) = (input, output) else {
        return;
    };
    let found = match probe(&input, &|| false) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("probe: {e}");
            std::process::exit(1);
        }
    };
    match render(
        &input,
        &output,
        Output::Mp3,
        found.duration,
        &|_| {},
        &|| false,
    ) {
        Ok(bytes) => println!("{{\"bytes\": {bytes}}}"),
        Err(e) => {
            eprintln!("render: {e}");
            std::process::exit(1);
        }
    }
}
