//! The SDK's native doubles and the real host answer one script of capability calls
//! alike: `plugins/conformance` runs it, its own test checks the doubles against
//! `expected.json`, and this test checks the real host against the same file.

mod support;

use support::{TestHost, get, root};

#[test]
fn the_real_host_answers_the_conformance_script_as_the_doubles_do() {
    let host = TestHost::new();
    host.runtime
        .services()
        .secrets
        .set("conformance", "set-secret", "s3cret")
        .unwrap();
    let policy = "[defaults.capabilities.routes]\n[plugins.conformance.capabilities.kv]\n\
                  [plugins.conformance.capabilities.secrets]\nnames = [\"set-secret\", \"unset-secret\"]\n";
    let plugin = host.load("conformance", policy);
    let response = plugin.handle(&get("/")).unwrap();
    assert_eq!(response.status, 200);
    let transcript: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("plugins/conformance/expected.json")).unwrap(),
    )
    .unwrap();
    let (got, want) = (transcript.as_array().unwrap(), expected.as_array().unwrap());
    for (got, want) in got.iter().zip(want) {
        assert_eq!(got, want, "the host and the doubles disagree on this step");
    }
    assert_eq!(got.len(), want.len());
}
