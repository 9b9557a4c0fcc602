//! Scheduled jobs: `pulse` (every 2 s) and `minutely` (cron `* * * * *`). Each run counts
//! itself in kv and marks its tick with a compare-and-swap, so a tick that ran twice shows
//! up as a duplicate; `GET /counts` reports both per job.

use capstan_guest::prelude::*;

pub struct Scheduled;

const JOBS: [&str; 2] = ["pulse", "minutely"];

impl Plugin for Scheduled {
    fn run_job(name: &str, context: &RunContext) -> Result<(), Error> {
        job::heartbeat(Some(&format!("{name} for tick {}", context.scheduled_for)));
        let tick = format!("tick:{name}:{}", context.scheduled_for);
        if !kv::compare_and_swap(&tick, None, b"1")? {
            kv::increment(&format!("duplicates:{name}"), 1)?;
        }
        kv::increment(&format!("runs:{name}"), 1)?;
        capstan_guest::info!(
            "{name} ran for tick {} (attempt {})",
            context.scheduled_for,
            context.attempt
        );
        Ok(())
    }

    fn handle(request: Request) -> Result<Response, Error> {
        if request.path != "/counts" {
            return Ok(Response::not_found());
        }
        let count = |key: String| -> Result<i64, Error> {
            Ok(kv::get(&key)?
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| text.parse().ok())
                .unwrap_or(0))
        };
        let mut counts = capstan_guest::serde_json::Map::new();
        for name in JOBS {
            counts.insert(
                name.into(),
                json!({
                    "runs": count(format!("runs:{name}"))?,
                    "duplicates": count(format!("duplicates:{name}"))?,
                }),
            );
        }
        Ok(Response::json(200, &Value::Object(counts)))
    }
}

capstan_guest::export_plugin!(Scheduled);

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_guest::testing;

    #[test]
    fn each_run_counts_once_and_a_repeated_tick_is_a_duplicate() {
        testing::reset();
        let context = RunContext::local("r1");
        Scheduled::run_job("pulse", &context).unwrap();
        Scheduled::run_job("pulse", &context).unwrap();
        let counts = Scheduled::handle(Request::new("GET", "/counts"))
            .unwrap()
            .body_text();
        let counts: Value = capstan_guest::serde_json::from_str(&counts).unwrap();
        assert_eq!(counts["pulse"], json!({"runs": 2, "duplicates": 1}));
        let beat = Some("pulse for tick 0".to_string());
        assert_eq!(testing::heartbeats(), [beat.clone(), beat]);
    }
}
