//! When a job is due. A schedule is either a 5-field UTC cron expression (POSIX day of
//! week, day-of-month/day-of-week OR, seconds not allowed) or a fixed gap measured from the
//! end of the previous run. Whether a tick is due is a pure function of the job's last run
//! and the database's clock, so every host that asks reaches the same answer; ticks missed
//! while no host ran are skipped and counted, never backfilled.

use crate::policy::period::Bounds;
use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Serialize, Serializer};
use std::time::Duration;

/// The gaps an `every` schedule may have: a second to 366 days.
pub const EVERY: Bounds = Bounds::new(Duration::from_secs(1), Duration::from_secs(366 * 24 * 3600));
/// Most missed ticks counted one by one before a skip is reported as "at least" this many.
const MAX_COUNTED_SKIPS: u32 = 100_000;

/// A job's schedule.
#[derive(Clone)]
pub enum Schedule {
    /// A 5-field cron expression, evaluated in UTC.
    Cron { expression: String, cron: Box<Cron> },
    /// A fixed gap from the end of one run to the start of the next.
    Every(Duration),
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Cron { expression, .. } => write!(f, "cron {expression:?}"),
            Schedule::Every(gap) => write!(f, "every {gap:?}"),
        }
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        match (self, other) {
            (Schedule::Cron { expression: a, .. }, Schedule::Cron { expression: b, .. }) => a == b,
            (Schedule::Every(a), Schedule::Every(b)) => a == b,
            _ => false,
        }
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Schedule::Cron { expression, .. } => map.serialize_entry("cron", expression)?,
            Schedule::Every(gap) => {
                map.serialize_entry("every", &humantime::format_duration(*gap).to_string())?
            }
        }
        map.end()
    }
}

/// What the scheduler knows of a job's latest tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastRun {
    /// The tick it was for (ms since the epoch).
    pub scheduled_ms: i64,
    /// When it finished, if it has.
    pub finished_ms: Option<i64>,
}

/// A tick that is due now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The tick to run (ms since the epoch).
    pub scheduled_ms: i64,
    /// Ticks before it that were missed and will not run.
    pub skipped: u32,
}

fn utc(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

impl Schedule {
    /// Parse a 5-field UTC cron expression (seconds and years are refused).
    pub fn cron(expression: &str) -> Result<Schedule, String> {
        let fields = expression.split_whitespace().count();
        if fields != 5 && !expression.trim_start().starts_with('@') {
            return Err(format!(
                "cron `{expression}` has {fields} fields; use 5 (minute hour day-of-month month \
                 day-of-week, UTC)"
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(expression)
            .map_err(|e| format!("cron `{expression}` is not valid: {e}"))?;
        Ok(Schedule::Cron {
            expression: expression.trim().to_string(),
            cron: Box::new(cron),
        })
    }

    /// Parse a gap such as `30s`, `5m` or `1h`.
    pub fn every(gap: &str) -> Result<Schedule, String> {
        EVERY.parse_field("every", gap).map(Schedule::Every)
    }

    /// The shortest time between two runs this schedule can ask for (for cron, the
    /// smallest gap among its next occurrences).
    pub fn shortest_gap(&self) -> Duration {
        match self {
            Schedule::Every(gap) => *gap,
            Schedule::Cron { cron, .. } => {
                let start = utc(0).expect("the epoch");
                let times: Vec<DateTime<Utc>> = cron.iter_after(start).take(64).collect();
                times
                    .windows(2)
                    .filter_map(|pair| (pair[1] - pair[0]).to_std().ok())
                    .min()
                    .unwrap_or(Duration::from_secs(60))
            }
        }
    }

    /// The tick due at `now_ms`, if any, given the job's latest tick (`last`) and the time
    /// the schedule started (`anchor_ms`: when this version was installed).
    pub fn due(&self, last: Option<LastRun>, anchor_ms: i64, now_ms: i64) -> Option<Due> {
        match self {
            Schedule::Cron { cron, .. } => {
                let from = last.map_or(anchor_ms, |last| last.scheduled_ms.max(anchor_ms));
                let mut ticks = cron.iter_after(utc(from)?);
                let first = ticks.next()?.timestamp_millis();
                if first > now_ms {
                    return None;
                }
                let mut latest = first;
                let mut skipped = 0;
                for tick in ticks {
                    let tick = tick.timestamp_millis();
                    if tick > now_ms || skipped >= MAX_COUNTED_SKIPS {
                        break;
                    }
                    skipped += 1;
                    latest = tick;
                }
                Some(Due {
                    scheduled_ms: latest,
                    skipped,
                })
            }
            Schedule::Every(gap) => {
                let gap_ms = i64::try_from(gap.as_millis()).unwrap_or(i64::MAX);
                let next = match last {
                    None => anchor_ms.saturating_add(gap_ms),
                    Some(LastRun {
                        finished_ms: None, ..
                    }) => return None,
                    Some(LastRun {
                        finished_ms: Some(finished),
                        ..
                    }) => finished.saturating_add(gap_ms),
                };
                if next > now_ms {
                    return None;
                }
                let behind = (now_ms - next) / gap_ms;
                let skipped = u32::try_from(behind).unwrap_or(u32::MAX);
                Some(Due {
                    scheduled_ms: next + behind * gap_ms,
                    skipped,
                })
            }
        }
    }

    /// When the next tick falls after `now_ms` (for operators; an `every` job whose run is
    /// still going has none yet).
    pub fn next_after(&self, last: Option<LastRun>, anchor_ms: i64, now_ms: i64) -> Option<i64> {
        match self {
            Schedule::Cron { cron, .. } => cron
                .find_next_occurrence(&utc(now_ms)?, false)
                .ok()
                .map(|t| t.timestamp_millis()),
            Schedule::Every(gap) => {
                let gap_ms = i64::try_from(gap.as_millis()).unwrap_or(i64::MAX);
                match last {
                    None => Some(anchor_ms.saturating_add(gap_ms)),
                    Some(LastRun {
                        finished_ms: Some(finished),
                        ..
                    }) => Some(finished.saturating_add(gap_ms)),
                    Some(_) => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;
    /// 2026-12-01T00:00:00Z.
    const T0: i64 = 1_796_083_200_000;

    #[test]
    fn cron_takes_five_utc_fields_and_refuses_seconds() {
        assert!(Schedule::cron("*/5 * * * *").is_ok());
        assert!(Schedule::cron("0 3 * * 1").is_ok());
        let six = Schedule::cron("0 */5 * * * *").unwrap_err();
        assert!(six.contains("6 fields"), "{six}");
        assert!(
            Schedule::cron("61 * * * *")
                .unwrap_err()
                .contains("not valid")
        );
        assert!(Schedule::cron("whenever").is_err());
    }

    #[test]
    fn every_takes_a_gap_between_a_second_and_a_year() {
        assert_eq!(
            Schedule::every("30s").unwrap(),
            Schedule::Every(Duration::from_secs(30))
        );
        assert!(Schedule::every("500ms").is_err());
        assert!(Schedule::every("2y").is_err());
        assert!(Schedule::every("soon").is_err());
    }

    #[test]
    fn posix_day_of_week_counts_monday_as_1() {
        // 2026-12-07 is a Monday.
        let monday = Schedule::cron("0 0 * * 1").unwrap();
        let due = monday.due(None, T0, T0 + 7 * 24 * 60 * MINUTE).unwrap();
        assert_eq!(due.scheduled_ms, T0 + 6 * 24 * 60 * MINUTE);
    }

    #[test]
    fn a_cron_tick_is_due_once_and_missed_ticks_are_counted_not_run() {
        let every_minute = Schedule::cron("* * * * *").unwrap();
        assert_eq!(every_minute.due(None, T0, T0 + 30_000), None, "not yet");
        let first = every_minute.due(None, T0, T0 + MINUTE + 10).unwrap();
        assert_eq!(
            first,
            Due {
                scheduled_ms: T0 + MINUTE,
                skipped: 0
            }
        );
        let last = LastRun {
            scheduled_ms: first.scheduled_ms,
            finished_ms: None,
        };
        assert_eq!(
            every_minute.due(Some(last), T0, T0 + MINUTE + 500),
            None,
            "already queued"
        );
        let after_outage = every_minute
            .due(Some(last), T0, T0 + 10 * MINUTE + 1)
            .unwrap();
        assert_eq!(
            after_outage,
            Due {
                scheduled_ms: T0 + 10 * MINUTE,
                skipped: 8
            }
        );
    }

    #[test]
    fn an_every_gap_is_measured_from_the_end_of_the_previous_run() {
        let every = Schedule::every("2s").unwrap();
        assert_eq!(every.due(None, T0, T0 + 1_999), None);
        assert_eq!(
            every.due(None, T0, T0 + 2_000).unwrap().scheduled_ms,
            T0 + 2_000
        );
        let running = LastRun {
            scheduled_ms: T0 + 2_000,
            finished_ms: None,
        };
        assert_eq!(
            every.due(Some(running), T0, T0 + 60_000),
            None,
            "one run at a time"
        );
        let finished = LastRun {
            scheduled_ms: T0 + 2_000,
            finished_ms: Some(T0 + 5_000),
        };
        assert_eq!(every.due(Some(finished), T0, T0 + 6_999), None);
        assert_eq!(
            every.due(Some(finished), T0, T0 + 7_000),
            Some(Due {
                scheduled_ms: T0 + 7_000,
                skipped: 0
            })
        );
        assert_eq!(
            every.due(Some(finished), T0, T0 + 12_500),
            Some(Due {
                scheduled_ms: T0 + 11_000,
                skipped: 2
            })
        );
    }

    #[test]
    fn the_shortest_gap_of_a_schedule() {
        assert_eq!(
            Schedule::cron("*/5 * * * *").unwrap().shortest_gap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            Schedule::cron("0,1 * * * *").unwrap().shortest_gap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            Schedule::every("7s").unwrap().shortest_gap(),
            Duration::from_secs(7)
        );
    }
}
