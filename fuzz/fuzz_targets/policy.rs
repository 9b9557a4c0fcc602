//! Any text as a policy: parsing, validation and every plugin's effective policy answer,
//! never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(policy) = capstan_host::Policy::parse(text)
    {
        for id in policy.plugins.keys().map(String::as_str).chain(["other"]) {
            let _ = policy.for_plugin(id);
        }
    }
});
