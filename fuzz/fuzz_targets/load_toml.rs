//! Arbitrary bytes as a TOML experiment or model file.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        common::exercise("fuzz.toml", text.to_string());
    }
});
