//! Topic names and the patterns that select them. A topic is dot-separated segments of
//! `[a-z0-9_-]` (`orders.created`); a pattern may use `*` for exactly one segment and a
//! final `>` for one or more (the NATS subject grammar, so patterns map onto JetStream
//! filters unchanged). Claim kinds are topics.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Most segments in a topic or pattern.
pub const MAX_SEGMENTS: usize = 16;
/// Longest segment.
pub const MAX_SEGMENT_BYTES: usize = 64;
/// Longest topic or pattern.
pub const MAX_TOPIC_BYTES: usize = 255;
/// First segment of the host's own topics, which no plugin publishes on.
pub const RESERVED: &str = "capstan";

/// Why a topic or pattern was refused.
fn problem(text: &str, rule: &str) -> String {
    format!(
        "`{}` is not a valid topic: {rule}",
        crate::text::shown_name(text)
    )
}

fn check_segment(text: &str, segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err(problem(text, "segments are separated by single dots"));
    }
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err(problem(text, "a segment is at most 64 characters"));
    }
    if !segment
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(problem(
            text,
            "segments use a-z, 0-9, `_` and `-` (`*` and `>` only in patterns)",
        ));
    }
    Ok(())
}

fn check_shape(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(problem(text, "it is empty"));
    }
    if text.len() > MAX_TOPIC_BYTES {
        return Err(problem(text, "it is longer than 255 bytes"));
    }
    if text.split('.').count() > MAX_SEGMENTS {
        return Err(problem(text, "it has more than 16 segments"));
    }
    Ok(())
}

/// A concrete topic (or claim kind), e.g. `orders.created`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Topic(String);

impl Topic {
    pub fn parse(text: &str) -> Result<Topic, String> {
        check_shape(text)?;
        for segment in text.split('.') {
            check_segment(text, segment)?;
        }
        Ok(Topic(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is one of the host's own (`capstan.…`).
    pub fn is_reserved(&self) -> bool {
        self.0.split('.').next() == Some(RESERVED)
    }
}

impl TryFrom<String> for Topic {
    type Error = String;
    fn try_from(text: String) -> Result<Topic, String> {
        Topic::parse(&text)
    }
}

impl From<Topic> for String {
    fn from(topic: Topic) -> String {
        topic.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Segment {
    Literal(String),
    /// `*`: exactly one segment.
    One,
    /// `>`: one or more segments (last only).
    Rest,
}

/// A topic pattern, e.g. `orders.*` or `audit.>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern(Vec<Segment>);

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        check_shape(text)?;
        let parts: Vec<&str> = text.split('.').collect();
        let last = parts.len() - 1;
        let mut segments = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            segments.push(match *part {
                "*" => Segment::One,
                ">" if index == last => Segment::Rest,
                ">" => return Err(problem(text, "`>` may only be the last segment")),
                literal => {
                    check_segment(text, literal)?;
                    Segment::Literal(literal.to_string())
                }
            });
        }
        Ok(Pattern(segments))
    }

    /// Whether `topic` is one this pattern selects.
    pub fn matches(&self, topic: &Topic) -> bool {
        let mut parts = topic.as_str().split('.');
        for segment in &self.0 {
            match (segment, parts.next()) {
                (Segment::Rest, Some(_)) => return true,
                (Segment::One, Some(_)) => {}
                (Segment::Literal(literal), Some(part)) if literal == part => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }

    /// The topics both patterns select, as one pattern (None if they share none).
    pub fn meet(&self, other: &Pattern) -> Option<Pattern> {
        meet(&self.0, &other.0).map(Pattern)
    }

    /// Whether it names the host's own topics (`capstan.…`) outright.
    pub fn is_reserved(&self) -> bool {
        matches!(self.0.first(), Some(Segment::Literal(first)) if first == RESERVED)
    }
}

fn meet(a: &[Segment], b: &[Segment]) -> Option<Vec<Segment>> {
    match (a.split_first(), b.split_first()) {
        (None, None) => Some(Vec::new()),
        (Some((Segment::Rest, _)), Some(_)) => Some(b.to_vec()),
        (Some(_), Some((Segment::Rest, _))) => Some(a.to_vec()),
        (Some((x, a_rest)), Some((y, b_rest))) => {
            let segment = match (x, y) {
                (Segment::One, other) | (other, Segment::One) => other.clone(),
                (Segment::Literal(x), Segment::Literal(y)) if x == y => Segment::Literal(x.clone()),
                _ => return None,
            };
            let mut out = vec![segment];
            out.extend(meet(a_rest, b_rest)?);
            Some(out)
        }
        _ => None,
    }
}

impl TryFrom<String> for Pattern {
    type Error = String;
    fn try_from(text: String) -> Result<Pattern, String> {
        Pattern::parse(&text)
    }
}

impl From<Pattern> for String {
    fn from(pattern: Pattern) -> String {
        pattern.to_string()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, segment) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(".")?;
            }
            match segment {
                Segment::Literal(literal) => f.write_str(literal)?,
                Segment::One => f.write_str("*")?,
                Segment::Rest => f.write_str(">")?,
            }
        }
        Ok(())
    }
}

/// Every pattern selecting what one of `ours` and one of `theirs` both select
/// (manifest ∩ policy), without repeats.
pub fn meet_all(ours: &[Pattern], theirs: &[Pattern]) -> Vec<Pattern> {
    let mut out: Vec<Pattern> = ours
        .iter()
        .flat_map(|a| theirs.iter().filter_map(|b| a.meet(b)))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(text: &str) -> Topic {
        Topic::parse(text).unwrap()
    }

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    #[test]
    fn topics_follow_the_grammar_and_name_the_rule_they_break() {
        let sixteen = format!("{}y", "x.".repeat(15));
        for good in ["orders", "orders.created", "a-b.c_d.9", &sixteen] {
            assert!(Topic::parse(good).is_ok(), "{good}");
        }
        for (bad, rule) in [
            ("", "empty"),
            ("Orders", "a-z"),
            ("orders..created", "single dots"),
            ("orders.", "single dots"),
            ("orders.*", "only in patterns"),
            ("a b", "a-z"),
            (&"s".repeat(65), "64 characters"),
            (&format!("{}a", "a.".repeat(16)), "16 segments"),
            (&format!("{}a", "abcdefgh.".repeat(30)), "255 bytes"),
        ] {
            let problem = Topic::parse(bad).unwrap_err();
            assert!(problem.contains(rule), "{bad}: {problem}");
        }
    }

    #[test]
    fn patterns_select_by_segment() {
        let cases = [
            ("orders.created", "orders.created", true),
            ("orders.created", "orders.deleted", false),
            ("orders.*", "orders.created", true),
            ("orders.*", "orders", false),
            ("orders.*", "orders.created.eu", false),
            ("orders.>", "orders.created.eu", true),
            ("orders.>", "orders", false),
            ("*.created", "users.created", true),
            (">", "anything.at.all", true),
        ];
        for (p, t, expected) in cases {
            assert_eq!(pattern(p).matches(&topic(t)), expected, "{p} ~ {t}");
        }
        assert!(Pattern::parse("orders.>.x").unwrap_err().contains("last"));
        assert!(Pattern::parse("orders.*x").is_err());
    }

    #[test]
    fn the_meet_of_two_patterns_selects_exactly_what_both_select() {
        let cases = [
            ("orders.*", "orders.>", Some("orders.*")),
            ("orders.*", "orders.created", Some("orders.created")),
            ("*.created", "orders.*", Some("orders.created")),
            (">", "orders.*.eu", Some("orders.*.eu")),
            ("orders.>", "users.>", None),
            ("orders.*", "orders.a.b", None),
        ];
        for (a, b, expected) in cases {
            let got = pattern(a).meet(&pattern(b)).map(|p| p.to_string());
            assert_eq!(got.as_deref(), expected, "{a} ∩ {b}");
            let back = pattern(b).meet(&pattern(a)).map(|p| p.to_string());
            assert_eq!(back, got, "the meet is symmetric");
        }
        let topics = ["orders.created", "orders.a.b", "users.created", "orders"];
        for (a, b) in [
            ("orders.>", "*.created"),
            (">", "orders.*"),
            ("*.*", "orders.>"),
        ] {
            let meet = pattern(a).meet(&pattern(b));
            for t in topics {
                let both = pattern(a).matches(&topic(t)) && pattern(b).matches(&topic(t));
                let met = meet.as_ref().is_some_and(|m| m.matches(&topic(t)));
                assert_eq!(both, met, "{a} ∩ {b} on {t}");
            }
        }
    }

    #[test]
    fn reserved_topics_and_patterns_are_recognised() {
        assert!(topic("capstan.plugin.installed").is_reserved());
        assert!(!topic("capstanx.a").is_reserved());
        assert!(pattern("capstan.>").is_reserved());
        assert!(
            !pattern("*.plugin").is_reserved(),
            "a wildcard is checked per topic"
        );
        assert!(!pattern("orders.>").is_reserved());
    }

    #[test]
    fn patterns_round_trip_through_text() {
        for text in ["orders.*", "a.>", ">", "x.y.z"] {
            assert_eq!(pattern(text).to_string(), text);
        }
        let parsed: Vec<Pattern> = serde_json::from_str(r#"["orders.*"]"#).unwrap();
        assert_eq!(parsed, vec![pattern("orders.*")]);
        assert!(serde_json::from_str::<Vec<Pattern>>(r#"["Orders"]"#).is_err());
    }
}
