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
# binutils: the linker, and addr2line, which perf runs to name inlined frames
# (with --perf-script); rustc-web depends on it anyway.
# libc6-dbg: glibc's symbols, so malloc/free frames are named, not [libc.so.6].
# tini: PID 1 that forwards `docker stop`'s SIGTERM and reaps orphans.
# No documentation, manual pages, translations nor downloaded .deb files stay
# in the image: the official slim image's own dpkg and apt rules, repeated for
# a base image without them (0.33 GB less on one made by .ci/base-image).
RUN printf 'path-exclude %s\n' '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' \
      '/usr/share/locale/*' '/usr/share/groff/*' '/usr/share/lintian/*' \
      >/etc/dpkg/dpkg.cfg.d/rust-flamegraph-slim \
 && echo 'path-include /usr/share/doc/*/copyright' >>/etc/dpkg/dpkg.cfg.d/rust-flamegraph-slim \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      linux-perf rustc-web cargo-web binutils libc6-dbg ca-certificates tini \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV CARGO_HOME=/usr/local/cargo
WORKDIR /opt/rust-flamegraph

# --- the profiler ---------------------------------------------------------
FROM toolchain AS build
# zstd (for perf.data written with -z) from Debian's libzstd, which the image
# has anyway (perf and rustc link it), instead of compiling zstd's C sources:
# about 70 CPU-seconds, a third of the profiler's build. Headers and pkg-config
# in this stage only.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libzstd-dev pkgconf \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV ZSTD_SYS_USE_PKG_CONFIG=1
COPY Cargo.toml Cargo.lock ./
COPY demo/Cargo.toml demo/
# Dependencies alone first, against stub sources: cached until a manifest
# changes, so that a change in src/ recompiles only the profiler's own crate.
RUN mkdir -p src demo/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs && echo 'fn main() {}' > demo/src/main.rs \
 && cargo build --release --locked -p rust-flamegraph
COPY src src
# COPY keeps the files' old mtimes: touch so that cargo rebuilds over the stubs.
RUN touch src/*.rs && cargo build --release --locked -p rust-flamegraph \
 && install -m 0755 target/release/rust-flamegraph /usr/local/bin/rust-flamegraph

# --- the image --------------------------------------------------------------
FROM toolchain
COPY entrypoint /usr/local/bin/entrypoint
ENV RUST_FLAMEGRAPH_OUT=/out
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "/usr/local/bin/entrypoint"]
# The demo, built the way the profiler builds it (src/target/build.rs: symbols,
# frame pointers, v0 names), by cargo itself and before the profiler is copied
# in: a change in src/ rebuilds neither the demo nor its dependencies. ARG: in
# these steps' environment only, not the image's.
ARG CARGO_PROFILE_RELEASE_DEBUG=limited
ARG CARGO_PROFILE_RELEASE_STRIP=false
ARG CARGO_BUILD_RUSTFLAGS="-C force-frame-pointers=yes -C symbol-mangling-version=v0"
COPY Cargo.toml Cargo.lock ./
COPY demo/Cargo.toml demo/
# Its dependencies first, against a stub demo: editing demo/src rebuilds only
# the demo. Writable by any user, so that `docker run --user …` can check the
# demo is fresh (cargo locks the target dir); `find` touches only what lacks
# the bit, so no layer copies another's files.
RUN mkdir -p src demo/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs && echo 'fn main() {}' > demo/src/main.rs \
 && cargo build --release --locked -p demo --bin demo --target-dir target/rust-flamegraph \
 && chmod -R a+rwX target "$CARGO_HOME"
COPY demo demo
RUN touch demo/src/*.rs && cargo build --release --locked -p demo --bin demo --target-dir target/rust-flamegraph \
 && find target "$CARGO_HOME" ! -perm -o+w -exec chmod a+rwX {} +
COPY --from=build /usr/local/bin/rust-flamegraph /usr/local/bin/rust-flamegraph
# `cargo flamegraph …` runs cargo-flamegraph from PATH: the same binary, which
# takes `cargo flamegraph`'s command line when called by that name. The
# profiler then finds the demo up to date (were its settings ever to differ
# from the ARGs above, it would build the demo again here, once). Without the
# ARGs, as at run time: cargo would add its own rustflags to those.
RUN ln -s rust-flamegraph /usr/local/bin/cargo-flamegraph \
 && env -u CARGO_PROFILE_RELEASE_DEBUG -u CARGO_PROFILE_RELEASE_STRIP -u CARGO_BUILD_RUSTFLAGS \
      rust-flamegraph --build-only \
 && find target "$CARGO_HOME" ! -perm -o+w -exec chmod a+rwX {} +
