//! The notes, made fit for the XML comment inferno puts them in.

use crate::model::text::printable;

/// `text` fit for inside an XML comment (inferno puts the notes in one): no
/// `--`, no `-` before the closing `-->`, and [`xml_safe`].
pub(super) fn comment_safe(text: &str) -> String {
    let mut text = printable(text).into_owned();
    while text.contains("--") {
        text = text.replace("--", "- -");
    }
    if text.ends_with('-') {
        text.push(' ');
    }
    text
}
