//! A period an operator writes in the policy, such as a session's longest time to live
//! or how long log lines and audit records are kept.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A duration written such as `30m` or `7d`: at least a second, at most [`LONGEST`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(pub Duration);

/// The longest period a policy may set.
const LONGEST: Duration = Duration::from_secs(366 * 24 * 3600);

impl Period {
    /// `Err` says what a period looks like.
    pub fn parse(text: &str) -> Result<Period, String> {
        humantime::parse_duration(text.trim())
            .ok()
            .filter(|d| *d >= Duration::from_secs(1) && *d <= LONGEST)
            .map(Period)
            .ok_or_else(|| {
                format!(
                    "`{}` is not a duration such as 30m or 7d (1s to 366d)",
                    crate::text::shown_within(text, 40)
                )
            })
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(self.0).to_string())
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
                error.contains("not a duration such as 30m or 7d"),
                "{bad}: {error}"
            );
        }
        let error = Period::parse("soon\u{1b}[2J").unwrap_err();
        assert!(
            error.starts_with("`soon") && !error.contains('\u{1b}'),
            "escaped where a person reads it: {error}"
        );
    }
}
