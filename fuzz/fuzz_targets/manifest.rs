//! Any bytes as a manifest: parsing and validation answer Ok or a typed error, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = capstan_host::Manifest::parse(data);
});
