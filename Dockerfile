# rust-flamegraph: profile Rust programs with Linux perf, from any host.
#   docker build -t rust-flamegraph .
#   docker run --rm --cap-add=SYS_ADMIN -v ./fg:/out rust-flamegraph -- --iters 10000 --size 200000
# Podman: the same two commands with `podman` (`-v ./fg:/out:Z` on SELinux hosts).
# Everything comes from Debian's archive and the Rust package registry; nothing
# here is specific to one CPU architecture (each package has an arm64 build:
# tests/arm64.rs asks apt).

FROM debian:trixie-slim AS toolchain
# linux-perf: perf 6.12. rustc-web/cargo-web: Debian's current Rust for trixie
# (1.96; trixie's plain rustc is 1.85, older than our rust-version).
# binutils: addr2line, which perf runs to name inlined frames.
# libc6-dbg: glibc's symbols, so malloc/free frames are named, not [libc.so.6].
# tini: PID 1 that forwards `docker stop`'s SIGTERM and reaps orphans.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      linux-perf rustc-web cargo-web binutils libc6-dbg ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
ENV CARGO_HOME=/usr/local/cargo
WORKDIR /opt/rust-flamegraph

# --- the profiler ---------------------------------------------------------
FROM toolchain AS build
COPY Cargo.toml Cargo.lock ./
COPY demo/Cargo.toml demo/
# Dependencies alone first, against stub sources: cached until a manifest changes.
RUN mkdir -p src demo/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs && echo 'fn main() {}' > demo/src/main.rs \
 && cargo build --release --locked -p rust-flamegraph
COPY src src
# COPY keeps the files' old mtimes: touch so that cargo rebuilds over the stubs.
RUN touch src/*.rs && cargo build --release --locked -p rust-flamegraph \
 && install -m 0755 target/release/rust-flamegraph /usr/local/bin/rust-flamegraph

# --- the image --------------------------------------------------------------
FROM toolchain
COPY --from=build /usr/local/bin/rust-flamegraph /usr/local/bin/rust-flamegraph
# `cargo flamegraph …` runs cargo-flamegraph from PATH: the same binary, which
# takes `cargo flamegraph`'s command line when called by that name.
RUN ln -s rust-flamegraph /usr/local/bin/cargo-flamegraph
COPY Cargo.toml Cargo.lock ./
COPY demo/Cargo.toml demo/
# The demo's dependencies, built the way the profiler builds (symbols, frame
# pointers), against a stub demo: editing demo/src then rebuilds only the demo.
# Writable by any user, so that `docker run --user …` can check the demo is fresh
# (cargo locks the target dir); `find` touches only what lacks the bit, so no
# layer copies another's files.
RUN mkdir -p src demo/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs && echo 'fn main() {}' > demo/src/main.rs \
 && rust-flamegraph --build-only \
 && chmod -R a+rwX target "$CARGO_HOME"
COPY entrypoint /usr/local/bin/entrypoint
ENV RUST_FLAMEGRAPH_OUT=/out
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "/usr/local/bin/entrypoint"]
# Last, so that editing the demo rebuilds only these two layers.
COPY demo demo
RUN touch demo/src/*.rs && rust-flamegraph --build-only \
 && find target "$CARGO_HOME" ! -perm -o+w -exec chmod a+rwX {} +
