//! The native part of the Python module `oauth_lock`.
