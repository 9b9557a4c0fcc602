//! Any bytes through the admin API's request extractors: the install upload (bare or
//! multipart), the audit and log query filters, and config bodies. Each answers a value
//! or an `ApiError` with a status and code, never panics. The first byte picks the
//! extractor; the second, for uploads, the content type.
#![no_main]

use capstan_host::server::fuzzing;
use std::sync::LazyLock;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    RUNTIME.block_on(async {
        match pick % 4 {
            0 => fuzzing::upload(rest).await,
            1 => fuzzing::audit_query(rest).await,
            2 => fuzzing::log_query(rest).await,
            _ => fuzzing::config_body(rest).await,
        }
    });
});
