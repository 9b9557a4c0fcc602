//! Plugin-supplied text is data: capped where it is stored, escaped where a person reads
//! it, so that no plugin can grow a record without bound, move a terminal's cursor, set
//! its title, or forge a whole log or audit line with a newline.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` cut to at most `max` bytes on a character boundary, saying how much was cut.
pub fn cap(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}…[truncated {} bytes]",
        &text[..end],
        text.len() - end
    ))
}

/// Whether `c` must not reach a terminal or a line-oriented log as itself: C0 and C1
/// controls, DEL, and the Unicode marks that reorder or hide text (bidi overrides,
/// isolates, zero-width and line separators).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
        )
}

/// `text` with every unsafe character shown as an escape (`\n`, `\t`, `\x1b`, `\u{202e}`);
/// a backslash is doubled, so an escape in the input cannot pass for one made here.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_as(text, Backslash::Doubled)
}

/// What [`escape_as`] does with a backslash.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backslash {
    Doubled,
    Kept,
}

/// `text` with every unsafe character shown as an escape, and backslashes as `backslash`
/// says.
fn escape_as(text: &str, backslash: Backslash) -> Cow<'_, str> {
    let doubled = backslash == Backslash::Doubled;
    if !text.chars().any(|c| is_unsafe(c) || (doubled && c == '\\')) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' if doubled => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && is_unsafe(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The most bytes of a message built around someone else's text (a plugin's manifest) an
/// error repeats: enough for any honest mistake, far less than a hostile one can write.
pub const SHOWN_BYTES: usize = 400;

/// A message of ours that carries someone else's text, capped to [`SHOWN_BYTES`], with
/// every unsafe character escaped as [`escape`] shows it. Backslashes stay as they are:
/// the message may already hold pieces escaped where it was built (a name shown with
/// [`shown_name`]), which must not come out escaped twice.
pub fn shown(message: &str) -> String {
    shown_up_to(message, SHOWN_BYTES)
}

/// The most bytes of a message about an operator's own document (a policy) an error
/// repeats: room for a TOML error that lists every key it expected.
pub const OPERATOR_SHOWN_BYTES: usize = 4096;

/// [`shown`], capped to `max` bytes instead.
pub fn shown_up_to(message: &str, max: usize) -> String {
    escape_as(&cap(message, max), Backslash::Kept).into_owned()
}

/// The most bytes of a name someone else chose (a tool, a job, a topic) a message repeats.
pub const NAME_BYTES: usize = 80;

/// A name someone else chose, capped to [`NAME_BYTES`] and escaped, as a message shows it.
pub fn shown_name(name: &str) -> String {
    shown_within(name, NAME_BYTES)
}

/// `text` capped to `max` bytes and escaped: a piece of someone else's text (a name, a
/// value) inside a message of ours.
pub fn shown_within(text: &str, max: usize) -> String {
    escape(&cap(text, max)).into_owned()
}

/// Like [`escape`], for a block of text shown as such (a response body): line breaks and
/// tabs stay, every other unsafe character is escaped.
pub fn escape_block(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.split('\t')
                .map(|part| escape(part).into_owned())
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_on_a_character_boundary_and_says_so() {
        assert_eq!(cap("héllo", 2), "h…[truncated 5 bytes]");
        assert_eq!(cap("short", 10), "short");
    }

    #[test]
    fn terminal_controls_and_line_breaks_become_visible_escapes() {
        let hostile = "ok\x1b[2J\x1b]0;pwned\x07\nFAKE row\r\0\u{202e}txt.exe\u{9b}";
        let shown = escape(hostile);
        assert_eq!(
            shown,
            "ok\\x1b[2J\\x1b]0;pwned\\x07\\nFAKE row\\r\\x00\\u{202e}txt.exe\\x9b"
        );
        assert!(!shown.chars().any(is_unsafe));
        assert_eq!(
            escape("a\\nb"),
            "a\\\\nb",
            "a literal backslash-n is not a newline"
        );
        assert!(matches!(escape("plain text ü"), Cow::Borrowed(_)));
        assert_eq!(escape_block("one\n\ttwo\x1b[0m"), "one\n\ttwo\\x1b[0m");
    }
}
