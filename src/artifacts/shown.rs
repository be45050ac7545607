//! Paths as the user finds them.

use std::path::Path;

/// `path` as the user finds it: in a container, a path under `/out` (the
/// image's output folder, a host folder mounted there) is followed by
/// "(your mounted folder)", since the host's name for it is not visible
/// from inside.
pub fn shown(path: &Path) -> String {
    if crate::sys::container::in_container() && path.starts_with("/out") {
        format!("{} (your mounted folder)", path.display())
    } else {
        path.display().to_string()
    }
}
