//! Hostile events. `POST /publish?topic=T` publishes the body on `T` and `POST
//! /request?kind=K` sends it as a request of `K`, whatever was granted, answering
//! `{"ok": …}` or `{"error": code, "message": …}` so tests see the host's refusal.
//! Events on `flaky.…` ask for a retry until their third attempt, on `stubborn.…` always;
//! events on `slow.…` take 200 ms;
//! events on `poison.…` are always rejected; requests of `spin.…` it claims spin until
//! the host stops them; every delivery is recorded in kv (`deliveries:<event id>` lists
//! its attempts; `topic:<topic>` counts them). It carries no manifest: the sidecar a
//! test installs it with decides what it declares (capstan.toml beside it is the usual one).

use capstan_guest::prelude::*;

pub struct Probe;

fn code(error: &Error) -> &'static str {
    match error {
        Error::Denied(_) => "denied",
        Error::NotFound => "not-found",
        Error::QuotaExceeded(_) => "quota-exceeded",
        Error::InvalidInput(_) => "invalid-input",
        Error::Timeout => "timeout",
        Error::TooLarge(_) => "too-large",
        Error::Internal(_) => "internal",
    }
}

fn outcome(result: Result<Value, Error>) -> Response {
    match result {
        Ok(value) => Response::json(200, &json!({"ok": value})),
        Err(error) => Response::json(
            200,
            &json!({"error": code(&error), "message": error.to_string()}),
        ),
    }
}

impl Plugin for Probe {
    fn on_event(event: &Event) -> Result<(), DeliveryError> {
        if event.topic.starts_with("slow.") {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let key = format!("deliveries:{}", event.id);
        let mut attempts = kv::get(&key)?.unwrap_or_default();
        attempts.extend_from_slice(format!("{},", event.attempt).as_bytes());
        kv::set(&key, &attempts)?;
        kv::increment(&format!("topic:{}", event.topic), 1)?;
        if event.topic.starts_with("poison.") {
            return Err(DeliveryError::Reject("this probe rejects poison".into()));
        }
        if event.topic.starts_with("stubborn.") {
            return Err(DeliveryError::Retry(
                "this probe never takes stubborn events".into(),
            ));
        }
        if event.topic.starts_with("flaky.") && event.attempt < 3 {
            return Err(DeliveryError::Retry(format!(
                "attempt {} is too early",
                event.attempt
            )));
        }
        Ok(())
    }

    fn handle_claim(kind: &str, payload: &[u8]) -> Result<Vec<u8>, Error> {
        if kind.starts_with("spin.") {
            let mut turns = 0u64;
            loop {
                turns = std::hint::black_box(turns.wrapping_add(1));
            }
        }
        Ok(format!("probe handled {kind} ({} bytes)", payload.len()).into_bytes())
    }

    fn handle(request: Request) -> Result<Response, Error> {
        let query = |name: &str| request.query_param(name).unwrap_or_default().to_string();
        match request.path.as_str() {
            "/publish" => Ok(outcome(
                events::publish(&query("topic"), &request.body, "text/plain").map(Value::from),
            )),
            "/request" => Ok(outcome(events::request(&query("kind"), &request.body).map(
                |answer| Value::from(String::from_utf8_lossy(&answer).into_owned()),
            ))),
            "/deliveries" => {
                let attempts = kv::get(&format!("deliveries:{}", query("event")))?;
                Ok(outcome(Ok(Value::from(
                    String::from_utf8_lossy(&attempts.unwrap_or_default()).into_owned(),
                ))))
            }
            _ => Ok(Response::not_found()),
        }
    }
}

capstan_guest::export_plugin!(
    Probe,
    manifest = none,
    exports = [routes, subscriber, claim]
);
