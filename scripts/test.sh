#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). Formatting, lints, the whole test
# suite (namespace and keepalived interop tests need root, keepalived, tshark and iproute2:
# `.ci/run` installs them on a fresh Debian machine) and the docs, all with warnings denied.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, warnings denied)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "fuzz target builds and is lint-clean (its own workspace; run it with cargo fuzz, see vrrp-core/README.md)"
cargo fmt --manifest-path vrrp-core/fuzz/Cargo.toml -- --check
cargo clippy --manifest-path vrrp-core/fuzz/Cargo.toml --all-targets --locked -- -D warnings

step "vrrpd's optimised build (vrrpd_takeover measures it beside keepalived's own optimised build)"
cargo build --profile opt --locked -p examples --bin vrrpd
target_dir=$(cargo metadata --format-version 1 --no-deps --locked | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
export VRRPD_RELEASE_BIN="$target_dir/opt/vrrpd"

step "cargo test (unit, property, golden-vector, tshark, namespace/keepalived interop, doc tests)"
cargo test --workspace --all-features --locked

step "cargo package: the four library crates as crates.io would get them (each built alone from its package)"
cargo package --workspace --exclude examples --locked

step "cargo doc (warnings denied; default features as on a plain build, and all features as on docs.rs)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked
