//! Durations an operator or a plugin author writes (`30s`, `5m`, `7d`): one parser with
//! the range each field accepts, so every duration field is bounded, refused in the same
//! words, and shown back escaped; and [`Period`], the policy's own.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The durations a field accepts, from `shortest` to `longest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub shortest: Duration,
    pub longest: Duration,
}

const DAY: u64 = 24 * 3600;
/// A year as a duration is written (`1y` is 365.25 days).
const YEAR: u64 = 365 * DAY + DAY / 4;

/// The longest anything a policy sets may last: a cancel grace, a minimum interval, event
/// retention, a token's lifetime.
pub const TEN_YEARS: Duration = Duration::from_secs(10 * YEAR);

impl Bounds {
    /// From `shortest` to `longest`, both included.
    pub const fn new(shortest: Duration, longest: Duration) -> Bounds {
        Bounds { shortest, longest }
    }

    /// `text` as a duration within these bounds; `Err` repeats `text` (escaped and
    /// capped) and says what a duration looks like and which ones are accepted.
    pub fn parse(&self, text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text.trim())
            .ok()
            .filter(|d| (self.shortest..=self.longest).contains(d))
            .ok_or_else(|| {
                format!(
                    "`{}` is not a duration from {} to {}",
                    crate::text::shown_within(text, 40),
                    exact(self.shortest),
                    exact(self.longest)
                )
            })
    }

    /// [`Bounds::parse`] for the field named `field`, which the error names.
    pub fn parse_field(&self, field: &str, text: &str) -> Result<Duration, String> {
        self.parse(text)
            .map_err(|problem| format!("`{field}` = {problem}"))
    }

    /// [`Bounds::parse_field`] of `text` when the field is set, `default` when not.
    pub fn parse_or(
        &self,
        field: &str,
        text: Option<&str>,
        default: Duration,
    ) -> Result<Duration, String> {
        text.map_or(Ok(default), |text| self.parse_field(field, text))
    }
}

/// `duration` in the largest unit that writes it exactly (`90s`, `10m`, `366d`, `10y`),
/// in hours below two days (`24h`, not `1d`).
fn exact(duration: Duration) -> String {
    const UNITS: [(u64, &str); 5] = [
        (YEAR * 1000, "y"),
        (DAY * 1000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    let millis = duration.as_millis();
    match UNITS
        .iter()
        .map(|&(size, unit)| (u128::from(size), unit))
        .find(|&(size, unit)| {
            millis > 0 && millis.is_multiple_of(size) && !(unit == "d" && millis < 2 * size)
        }) {
        Some((size, unit)) => format!("{}{unit}", millis / size),
        None => format!("{millis}ms"),
    }
}

/// Serialize a duration as the policy would write it (`1h 30m`), for grants shown back.
pub fn as_text<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&humantime::format_duration(*duration).to_string())
}

/// A duration such as `30m` or `7d` in the policy, from a second to 366 days: a session's
/// longest time to live, how long log lines and audit records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(pub Duration);

impl Period {
    /// What a period may be: a second to 366 days.
    pub const BOUNDS: Bounds = Bounds::new(Duration::from_secs(1), Duration::from_secs(366 * DAY));

    /// `Err` says what a period looks like.
    pub fn parse(text: &str) -> Result<Period, String> {
        Self::BOUNDS.parse(text).map(Period)
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        as_text(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Period::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_a_second_to_366_days() {
        assert_eq!(
            Period::parse(" 30m "),
            Ok(Period(Duration::from_secs(1800)))
        );
        assert_eq!(
            Period::parse("366d"),
            Ok(Period(Duration::from_secs(366 * 24 * 3600)))
        );
        for bad in ["367d", "500ms", "0s", "soon", ""] {
            let error = Period::parse(bad).unwrap_err();
            assert!(
                error.contains("is not a duration from 1s to 366d"),
                "{bad}: {error}"
            );
        }
        let error = Period::parse("soon\u{1b}[2J").unwrap_err();
        assert!(
            error.starts_with("`soon") && !error.contains('\u{1b}'),
            "escaped where a person reads it: {error}"
        );
    }

    #[test]
    fn bounds_take_both_ends_refuse_beyond_them_and_name_the_field() {
        let bounds = Bounds::new(Duration::from_millis(1), Duration::from_secs(24 * 3600));
        assert_eq!(bounds.parse("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(bounds.parse("24h"), Ok(Duration::from_secs(24 * 3600)));
        assert_eq!(
            bounds.parse_field("timeout", "25h"),
            Err("`timeout` = `25h` is not a duration from 1ms to 24h".into())
        );
        assert!(bounds.parse("0s").is_err());
        assert!(
            bounds.parse("500000000000y").is_err(),
            "beyond what a duration holds"
        );
        assert_eq!(
            bounds.parse_or("timeout", None, Duration::from_secs(5)),
            Ok(Duration::from_secs(5)),
            "an unset field is the default"
        );
        assert_eq!(
            bounds.parse_or("timeout", Some("2h"), Duration::from_secs(5)),
            Ok(Duration::from_secs(7200))
        );
        assert!(
            bounds
                .parse_or("timeout", Some("25h"), Duration::from_secs(5))
                .unwrap_err()
                .starts_with("`timeout` = ")
        );
        let long = format!("{}s", "9".repeat(5000));
        assert!(
            bounds.parse(&long).unwrap_err().len() < 200,
            "the text is capped"
        );
    }

    #[test]
    fn a_bound_is_written_in_the_largest_exact_unit() {
        for (millis, text) in [
            (1, "1ms"),
            (1500, "1500ms"),
            (90_000, "90s"),
            (600_000, "10m"),
            (5_400_000, "90m"),
            (86_400_000, "24h"),
            (2 * 86_400_000, "2d"),
            (366 * 86_400_000, "366d"),
            (TEN_YEARS.as_millis() as u64, "10y"),
        ] {
            assert_eq!(exact(Duration::from_millis(millis)), text);
        }
    }
}
