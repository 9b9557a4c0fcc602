//! Any bytes as an upload, with or without a sidecar manifest (split at the first 0xFF
//! 0x00 pair), under a policy granting everything: the gate answers, never panics.
#![no_main]

use std::sync::LazyLock;

static POLICY: LazyLock<capstan_host::Policy> = LazyLock::new(|| {
    capstan_host::Policy::parse(
        "[defaults.capabilities.routes]\n[defaults.capabilities.mcp]\n[defaults.capabilities.kv]\n\
         [defaults.capabilities.secrets]\nnames = [\"token\"]\n\
         [defaults.capabilities.http]\nhosts = [\"https://*.example.com\"]\n",
    )
    .expect("the fuzz policy parses")
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (component, sidecar) = match data.windows(2).position(|w| w == [0xff, 0x00]) {
        Some(at) => (&data[at + 2..], Some(&data[..at])),
        None => (data, None),
    };
    let _ = capstan_host::gate::admit(component, sidecar, &POLICY, 1 << 20);
});
