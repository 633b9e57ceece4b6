//! Text that clients chose, made safe to store and show: bounded in length, and with
//! control characters escaped so that a subject or transactionID cannot forge log
//! lines or move a terminal's cursor.

use std::borrow::Cow;

/// `s` cut to at most `max` characters, marked when cut.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}... ({} bytes in all)", s.get(..i).unwrap_or_default(), s.len()),
    }
}

/// `s` with every control character (newlines, escape sequences, NUL, C1) written as
/// `\n`, `\r`, `\t` or `\u{..}`; unchanged (borrowed) when it has none.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_borrowed() {
        assert!(matches!(escape_controls("CN=device,O=Example"), Cow::Borrowed(_)));
        assert_eq!(escape_controls("a\nb\r\t\u{1b}[2J\u{0}\u{9b}"), "a\\nb\\r\\t\\u{1b}[2J\\u{0}\\u{9b}");
    }

    #[test]
    fn long_text_is_clipped() {
        assert_eq!(clip("short", 10), "short");
        let long = "é".repeat(2000);
        let c = clip(&long, 1024);
        assert!(c.starts_with(&"é".repeat(1024)) && c.ends_with("(4000 bytes in all)"), "{c}");
    }
}
