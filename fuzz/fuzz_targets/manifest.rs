//! Any bytes as a manifest CSV: rows or a clear error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = scalpmap::patient::parse_manifest(data, Path::new("/clinic"), "fuzz.csv");
});
