# The cross toolchain of .ci/arm64-vm: Debian's own Rust (rustc-web, with the
# arm64 standard library) and GNU's arm64 C toolchain as linker, on the
# Dockerfile's base image. Built by .ci/arm64-vm; docker caches it.
FROM debian:trixie-slim
RUN dpkg --add-architecture arm64 \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu \
      libc6-dev:arm64 binutils-aarch64-linux-gnu ca-certificates \
 && rm -rf /var/lib/apt/lists/*
