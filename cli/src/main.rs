//! The `oauth-lock` command (placeholder while the core lands).
#[allow(dead_code)]
mod mock_server;
fn main() {}
