//! Text as it may be shown: in a terminal, an SVG or a title.

use std::borrow::Cow;

/// `text` with every character that XML 1.0 forbids, and every other control
/// character (invisible in a flamegraph anyway), replaced by a visible escape:
/// `\x07` for ASCII, `\u{85}` beyond. Everything else is left as it is
/// (inferno escapes markup itself), so names that are fine do not change.
/// Borrowed when nothing needed escaping.
///
/// For whatever came from a recording, a binary or a file and reaches a
/// terminal or an SVG: a function named `\x1b]0;…\x07` must not retitle the
/// window.
pub fn printable(text: &str) -> Cow<'_, str> {
    // Bytes that start what needs escaping: C0 and DEL, then the lead bytes
    // of U+0080..U+00BF (C1) and of U+F000..U+FFFF (U+FFFE, U+FFFF).
    let suspect = |b: &u8| *b < 0x20 || *b == 0x7f || *b == 0xc2 || *b == 0xef;
    if !text.as_bytes().iter().any(suspect) || !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if c.is_ascii() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// Control characters (C0, DEL, C1: tab and line breaks included) and the two
/// characters outside XML 1.0's `Char` that a Rust string can hold besides
/// them, U+FFFE and U+FFFF. (Surrogates cannot occur in a `str`; other
/// noncharacters are allowed by XML.)
fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}'
}

/// Arguments joined for display, each quoted as a shell would need it
/// (`rg -c 'fn [a-z_]+\('`), so that a command shown can be run again.
pub fn join_args<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let words: Vec<std::borrow::Cow<'_, str>> =
        args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    shell_words::join(words.iter().map(|w| w.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_as_a_shell_needs() {
        assert_eq!(
            join_args(&["rg", "-c", "fn [a-z_]+\\("]),
            "rg -c 'fn [a-z_]+\\('"
        );
        assert_eq!(join_args(&["demo", "--iters", "5"]), "demo --iters 5");
        assert_eq!(join_args(&["echo", "it's", ""]), "echo 'it'\\''s' ''");
    }
}
