//! The data the stages pass on: folded stacks, the timeline, stacks by
//! address (for pprof), the figures computed over them, and text made safe
//! to show. Imports nothing else of this crate, so every stage may use it.

pub mod counts;
pub mod folded;
pub mod profile;
pub mod seen;
pub mod text;
pub mod timeline;
