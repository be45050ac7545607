//! Patches to inferno's stylesheet and script: a visible Search button, and
//! the search opened by Cmd+F and `/` as well as Ctrl+F.

use std::io::Write;

///
/// - Its stylesheet draws the Search button at opacity 0.1 (1 on hover):
///   drawn plainly, underlined like a link, it can be found.
/// - Its key handler opens the search on Ctrl+F (and F3) only, so on a Mac
///   Cmd+F opens the browser's own find bar, which does not see the frames'
///   names. Ours also takes Cmd+F (`metaKey`) and `/` (no modifier but Shift:
///   on some keyboards `/` needs it), reading `e.key` as well as the
///   deprecated `keyCode`.
///
/// These are inferno 0.12's texts (`src/flamegraph/flamegraph.css` and
/// `flamegraph.js`); `tests::inferno_still_has_the_text_we_patch` fails if an
/// upgrade changes them. The first is in a `<style>` element's text (no `<`
/// or `&`), the second in the script's CDATA (no `]]>`).
pub const PATCHES: [(&str, &str); 2] = [
    (
        "#search { text-anchor:end; opacity:0.1; cursor:pointer; }",
        "#search { text-anchor:end; opacity:1; cursor:pointer; text-decoration:underline; }",
    ),
    (
        "if (e.keyCode === 114 || (e.ctrlKey && e.keyCode === 70)) {",
        "if (e.keyCode === 114 \
         || ((e.ctrlKey || e.metaKey) && (e.keyCode === 70 || e.key === \"f\" || e.key === \"F\")) \
         || (e.key === \"/\" && !e.ctrlKey && !e.metaKey && !e.altKey)) {",
    ),
];

/// inferno's SVG up to the end of its `<script>`, held until [`PATCHES`] are
/// applied; the rest (the frames) passes straight through.
pub(super) struct Patched<'w> {
    out: &'w mut dyn Write,
    /// The beginning of the SVG, until it is patched (then empty).
    head: Vec<u8>,
    patched: bool,
    /// How many of [`PATCHES`] were applied.
    applied: usize,
}

/// The head is patched once it holds this (the end of inferno's script), or
/// at this size without it (inferno's head is about 20 KB).
const HEAD_END: &[u8] = b"</script>";
const HEAD_MAX: usize = 1 << 20;

impl<'w> Patched<'w> {
    pub(super) fn new(out: &'w mut dyn Write) -> Self {
        Self {
            out,
            head: Vec::new(),
            patched: false,
            applied: 0,
        }
    }

    fn patch_head(&mut self) -> std::io::Result<()> {
        self.patched = true;
        let head = std::mem::take(&mut self.head);
        let (head, applied) = patch(head);
        self.applied = applied;
        self.out.write_all(&head)
    }

    /// Writes what is still held; returns how many patches were applied.
    pub(super) fn finish(mut self) -> std::io::Result<usize> {
        if !self.patched {
            self.patch_head()?;
        }
        self.out.flush()?;
        Ok(self.applied)
    }
}

/// Applies [`PATCHES`] to the head of an SVG; returns it and how many applied.
fn patch(mut head: Vec<u8>) -> (Vec<u8>, usize) {
    let mut applied = 0;
    for (from, to) in PATCHES {
        let at = head.windows(from.len()).position(|w| w == from.as_bytes());
        if let Some(i) = at {
            head.splice(i..i + from.len(), to.bytes());
            applied += 1;
        }
    }
    (head, applied)
}

impl Write for Patched<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.patched {
            return self.out.write(buf);
        }
        let searched = self.head.len().saturating_sub(HEAD_END.len() - 1);
        self.head.extend_from_slice(buf);
        if self.head[searched..]
            .windows(HEAD_END.len())
            .any(|w| w == HEAD_END)
            || self.head.len() >= HEAD_MAX
        {
            self.patch_head()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Held bytes wait for `finish`: a flush is no reason to write a half-patched head.
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inferno_still_has_the_text_we_patch() {
        // Rendered without our patch, inferno's SVG holds each text exactly once.
        let mut options = inferno::flamegraph::Options::default();
        let mut raw = Vec::new();
        inferno::flamegraph::from_lines(&mut options, ["a;b 1"], &mut raw).unwrap();
        let raw = String::from_utf8(raw).unwrap();
        for (from, _) in PATCHES {
            assert_eq!(
                raw.matches(from).count(),
                1,
                "inferno's SVG no longer holds {from:?}: update PATCHES to the new \
                 text (see its comment)"
            );
        }
        // Ours holds the replacements, within the head we buffer.
        let mut out = Vec::new();
        let mut svg = Patched::new(&mut out);
        inferno::flamegraph::from_lines(&mut options, ["a;b 1"], &mut svg).unwrap();
        assert_eq!(svg.finish().unwrap(), PATCHES.len(), "every patch applied");
        let ours = String::from_utf8(out).unwrap();
        assert!(raw.find("</script>").unwrap() < HEAD_MAX);
        for (from, to) in PATCHES {
            assert!(!ours.contains(from) && ours.contains(to));
            assert!(!to.contains("]]>") && !to.contains("</"));
        }
        assert!(
            !PATCHES[0].1.contains(['<', '&']),
            "the stylesheet is XML text"
        );
    }

    #[test]
    fn patching_passes_any_write_pattern_through() {
        // Bytes written one at a time, `</script>` split across writes.
        let head = format!(
            "<svg><style>{}</style><script>{}</script>",
            PATCHES[0].0, PATCHES[1].0
        );
        let input = format!("{head}<g>frames</g></svg>");
        let mut out = Vec::new();
        let mut svg = Patched::new(&mut out);
        for b in input.as_bytes() {
            svg.write_all(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(svg.finish().unwrap(), 2);
        let expected = input
            .replace(PATCHES[0].0, PATCHES[0].1)
            .replace(PATCHES[1].0, PATCHES[1].1);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        // Output that never holds the texts is written unchanged.
        let mut out = Vec::new();
        let mut svg = Patched::new(&mut out);
        svg.write_all(b"<svg/>").unwrap();
        assert_eq!(svg.finish().unwrap(), 0);
        assert_eq!(out, b"<svg/>");
    }
}
