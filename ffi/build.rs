//! The SONAME of `liboauth_lock.so` on Linux, for the packaged library: set when the build
//! runs with `OAUTH_LOCK_SONAME=1` (scripts/package-c does; so can a distribution's package).
//!
//! Before 1.0 every minor release may break the ABI (that is how Cargo reads 0.x versions), so
//! the SONAME carries the minor: `liboauth_lock.so.0.1` for every 0.1.x; from 1.0 on, only the
//! major (`liboauth_lock.so.1`). A program linked against one 0.1.x runs with any later 0.1.x
//! and refuses (at load time, by name) a 0.2.
//!
//! Not by default: a program linked with `-loauth_lock` records the SONAME as what it needs,
//! and cargo makes no `liboauth_lock.so.0.1` link beside `target/*/liboauth_lock.so`, so the
//! tests, benchmarks and bindings that link or load the library in `target/` would not find
//! it. Without a SONAME they record `liboauth_lock.so`, which is there.
//!
//! The exported symbols need no version script of ours: rustc already links a cdylib with its
//! own, which exports only the `#[no_mangle]` items (`oauth_lock_*`) and hides the rest. A
//! second anonymous version script is ignored by lld (it takes the union) and is an error for
//! GNU ld ("anonymous version tag cannot be combined with other version tags"), which Rust
//! before 1.90 uses on Linux. `scripts/test-package-c` checks `nm -D`.
use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=OAUTH_LOCK_SONAME");
    let wanted = env::var("OAUTH_LOCK_SONAME").is_ok_and(|v| !v.is_empty() && v != "0");
    if !wanted || env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let soname = if major == "0" {
        format!("liboauth_lock.so.0.{minor}")
    } else {
        format!("liboauth_lock.so.{major}")
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
}
