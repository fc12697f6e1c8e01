//! Arbitrary bytes as a JSON experiment or model file.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        common::exercise("fuzz.json", text.to_string());
    }
});
