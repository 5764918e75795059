//! The C ABI of oauth-lock: translation only, every decision stays in the core.
