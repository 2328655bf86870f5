//! LL-HLS delivery directives from a request's query string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use panocast::api::blocking::Directives;

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        let _ = Directives::parse(Some(query));
    }
});
