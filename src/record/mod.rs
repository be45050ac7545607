//! The recording stage: `perf record` run on the target, and ended cleanly.
//!
//! - [`options`]: how perf records ([`RecordOptions`], [`CallGraph`]);
//! - [`perf`]: perf's command lines, and whether perf may sample here;
//! - [`session`]: the perf session, start to end, streamed or to perf.data;
//! - [`stop`]: when it stops (signals, `--duration`, size), and ending a
//!   program that will not;
//! - [`perf_stderr`]: perf's messages, relayed without its noise;
//! - [`progress`]: the line that shows a recording is alive;
//! - [`exec_helper`](mod@exec_helper): our binary as perf's workload, execing the program;
//! - [`scratch`]: the temporary folder for perf.data.

pub mod exec_helper;
pub mod options;
pub mod perf;
pub mod perf_stderr;
pub mod progress;
pub mod scratch;
pub mod session;
pub mod stop;
pub mod switch_cap;

pub use exec_helper::exec_helper;
pub use options::{CallGraph, RecordOptions};
pub use session::{record, record_streaming, Profiled, Recording};
pub use stop::StopReason;
