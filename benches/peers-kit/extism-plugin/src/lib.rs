//! Extism's benchmark workload, count-vowels, answering the JSON the Capstan bench plugin's
//! `/count-vowels` route answers, and a no-op answering `done` like its `/noop`.

use extism_pdk::{FnResult, plugin_fn};

/// The vowels in `input`, counted byte by byte as every peer in benches/peers counts them.
#[plugin_fn]
pub fn count_vowels(input: Vec<u8>) -> FnResult<String> {
    let count = input.iter().filter(|b| b"aeiouAEIOU".contains(b)).count();
    Ok(format!("{{\"count\":{count}}}"))
}

/// Nothing: the cost of a call itself.
#[plugin_fn]
pub fn noop(_input: Vec<u8>) -> FnResult<String> {
    Ok("done".into())
}
