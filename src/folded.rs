//! Folded stacks (`frame;frame;… count` lines): the format between stages,
//! and what `--from-folded` reads back.

use std::path::Path;

use anyhow::{Context, Result};

/// Folded stacks and what perf said while producing them.
#[derive(Debug, Default)]
pub struct Folded {
    /// `frame;frame;… count` lines, as inferno writes them.
    pub text: Vec<u8>,
    /// perf script's warnings (lost events, unreadable data), if any.
    pub warnings: Vec<String>,
}

/// Reads folded stacks from a file (a `stacks.folded` of an earlier run).
///
/// The file may come from anywhere: bytes that are not UTF-8 are replaced,
/// lines that are not `frames count` are skipped with a warning, and a file
/// with no stack at all is an error.
pub fn read_folded(path: &Path) -> Result<Folded> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read folded stacks from {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut kept = String::with_capacity(text.len());
    let mut skipped = 0usize;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match parse_line(line) {
            Some((frames, count)) if count > 0 => {
                kept.push_str(frames);
                kept.push(' ');
                kept.push_str(&count.to_string());
                kept.push('\n');
            }
            _ => skipped += 1,
        }
    }
    if kept.is_empty() {
        anyhow::bail!(
            "{} holds no folded stacks (lines of `frame;frame;… count`); \
             give a stacks.folded written by rust-flamegraph or inferno",
            path.display()
        );
    }
    let mut warnings = Vec::new();
    if skipped > 0 {
        warnings.push(format!(
            "skipped {skipped} lines of {} that are not folded stacks",
            path.display()
        ));
    }
    if matches!(text, std::borrow::Cow::Owned(_)) {
        warnings.push(format!(
            "{} is not valid UTF-8: bad bytes were replaced",
            path.display()
        ));
    }
    Ok(Folded {
        text: kept.into_bytes(),
        warnings,
    })
}

/// One line of folded stacks: its frames (root first) and sample count.
/// Returns `None` for lines that are not `frames count`.
pub fn parse_line(line: &str) -> Option<(&str, u64)> {
    let (frames, count) = line.trim_end().rsplit_once(' ')?;
    let count = count.parse().ok()?;
    (!frames.is_empty()).then_some((frames, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_files_with_garbage_keep_their_stacks_and_say_what_was_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"a;b 3\n\xff\xfe garbage\n\0\0\0\na;\xffc 2\nx 0\n").unwrap();
        let folded = read_folded(&path).unwrap();
        assert_eq!(
            String::from_utf8(folded.text).unwrap(),
            "a;b 3\na;\u{fffd}c 2\n"
        );
        assert!(
            folded
                .warnings
                .iter()
                .any(|w| w.contains("skipped 3 lines")),
            "{:?}",
            folded.warnings
        );
        assert!(folded.warnings.iter().any(|w| w.contains("UTF-8")));
        std::fs::write(&path, b"\x7fELF\x02\x01").unwrap();
        let err = read_folded(&path).unwrap_err().to_string();
        assert!(err.contains("holds no folded stacks"), "{err}");
        assert!(read_folded(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn parse_line_rejects_garbage() {
        assert_eq!(parse_line("a;b 12"), Some(("a;b", 12)));
        assert_eq!(parse_line("a;b c d 3\n"), Some(("a;b c d", 3)));
        for bad in ["", "12", " 12", "a;b", "a;b x", "a -1"] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }
}
