//! `rust-flamegraph`: the command-line front of the library.

use std::process::ExitCode;

use rust_flamegraph::cli::Options;
use rust_flamegraph::exit::Exit;

fn main() -> ExitCode {
    // perf runs the program through this binary (a hidden helper mode): it
    // must act before the command line is parsed.
    if let Some(code) = rust_flamegraph::record::exec_helper() {
        return code;
    }
    let opts = Options::from_env();
    match rust_flamegraph::run(&opts.into_config()) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(report)) => {
            rust_flamegraph::say!("{}", report.to_string().trim_end());
            if opts.open {
                if let Some(svg) = report
                    .written
                    .iter()
                    .find(|p| p.extension().is_some_and(|e| e == "svg"))
                {
                    rust_flamegraph::artifacts::open(svg);
                }
            }
            match report.exit(opts.ignore_status) {
                Some(exit) => {
                    rust_flamegraph::say!(
                        "rust-flamegraph: the profiled program failed; \
                         the flamegraph was still written (--ignore-status exits 0)"
                    );
                    ExitCode::from(exit.code())
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(err) => {
            rust_flamegraph::say!(
                "rust-flamegraph: error: {}",
                rust_flamegraph::exit::message(&err)
            );
            ExitCode::from(Exit::of(&err).code())
        }
    }
}
