//! Turns a TOML parse error into one line that names the line number and the problem.

/// `line N: <message>` for `err` raised while parsing `text`.
pub(crate) fn describe(text: &str, err: &toml::de::Error) -> String {
    match err.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", err.message())
        }
        None => err.message().to_string(),
    }
}
