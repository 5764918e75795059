//! The committed `include/oauth_lock.h` is exactly what cbindgen generates from `src/` with
//! `cbindgen.toml`: a change to the ABI that forgot the header fails here.
//!
//! Regenerate it with `OAUTH_LOCK_WRITE_HEADER=1 cargo test -p oauth-lock-ffi --test header`.

use std::path::Path;

#[test]
fn the_committed_header_is_what_cbindgen_generates() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = crate_dir.join("../include/oauth_lock.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("ffi/cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header from ffi/src");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    if std::env::var_os("OAUTH_LOCK_WRITE_HEADER").is_some_and(|v| v == "1") {
        std::fs::write(&committed, &generated).expect("include/oauth_lock.h is writable");
        return;
    }
    let on_disk = std::fs::read_to_string(&committed).expect("include/oauth_lock.h exists");
    if on_disk != generated {
        let first = on_disk
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| on_disk.lines().count().min(generated.lines().count()));
        panic!(
            "include/oauth_lock.h differs from what cbindgen generates from ffi/src, first at \
             line {}:\n  committed: {:?}\n  generated: {:?}\nregenerate: \
             OAUTH_LOCK_WRITE_HEADER=1 cargo test -p oauth-lock-ffi --test header",
            first + 1,
            on_disk.lines().nth(first).unwrap_or("<end of file>"),
            generated.lines().nth(first).unwrap_or("<end of file>"),
        );
    }
}
