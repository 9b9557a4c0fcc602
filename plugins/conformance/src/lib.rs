//! One script of capability calls whose every answer is recorded: the plugin's own test
//! runs it against `capstan_guest::testing`, the host's test runs the built component on
//! a real host, and both compare with `expected.json`, so the doubles cannot drift from
//! the host's rules (caps, quota, `denied` versus `not-found`, the sentences).

use capstan_guest::prelude::*;

pub struct Conformance;

/// One call's outcome: `ok` with its value, or the error kind with its sentence.
fn outcome<T: Into<Value>>(step: &str, result: Result<T, Error>) -> Value {
    match result {
        Ok(value) => json!({ "step": step, "outcome": "ok", "value": value.into() }),
        Err(error) => {
            let kind = match &error {
                Error::Denied(_) => "denied",
                Error::NotFound => "not-found",
                Error::QuotaExceeded(_) => "quota-exceeded",
                Error::InvalidInput(_) => "invalid-input",
                Error::Timeout => "timeout",
                Error::TooLarge(_) => "too-large",
                Error::Internal(_) => "internal",
            };
            json!({ "step": step, "outcome": kind, "message": error.to_string() })
        }
    }
}

/// The script: every call a plugin can get wrong, in order.
pub fn transcript() -> Vec<Value> {
    let long_key = "k".repeat(513);
    let big_value = vec![0u8; 1024 * 1024 + 1];
    vec![
        outcome("kv.set empty key", kv::set("", b"x")),
        outcome("kv.set 513-byte key", kv::set(&long_key, b"x")),
        outcome("kv.set value over 1 MiB", kv::set("big", &big_value)),
        outcome("kv.set a", kv::set("a", b"x")),
        outcome("kv.set b", kv::set("b", b"2")),
        outcome("kv.set c", kv::set("c", b"3")),
        outcome("kv.set d (a 4th key)", kv::set("d", b"4")),
        outcome("kv.set a again", kv::set("a", b"again")),
        outcome("kv.get missing", kv::get("missing")),
        outcome("kv.increment non-number", kv::increment("a", 1)),
        outcome("kv.increment b", kv::increment("b", 40)),
        outcome(
            "kv.list-keys limit 0",
            kv::list_keys("", None, 0).map(|page| json!([page.keys, page.next_cursor])),
        ),
        outcome(
            "kv.compare-and-swap stale",
            kv::compare_and_swap("c", Some(b"nope"), b"x"),
        ),
        outcome("kv.delete c", kv::delete("c")),
        outcome("kv.delete c again", kv::delete("c")),
        outcome(
            "secrets.get set",
            secrets::get("set-secret").map(|value| value.len()),
        ),
        outcome("secrets.get unset", secrets::get("unset-secret")),
        outcome("secrets.get undeclared", secrets::get("undeclared")),
    ]
}

impl Plugin for Conformance {
    fn handle(_request: Request) -> Result<Response, Error> {
        Ok(Response::json(200, &transcript()))
    }
}

capstan_guest::export_plugin!(Conformance);

#[cfg(test)]
mod tests {
    use capstan_guest::testing;

    #[test]
    fn the_doubles_answer_as_the_expected_transcript_says() {
        testing::reset();
        testing::set_secret("set-secret", "s3cret");
        let expected: Vec<capstan_guest::serde_json::Value> =
            capstan_guest::serde_json::from_str(include_str!("../expected.json")).unwrap();
        assert_eq!(super::transcript(), expected);
    }
}
