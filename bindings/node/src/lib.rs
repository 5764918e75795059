//! The Node addon behind the npm package `oauth-lock`.
