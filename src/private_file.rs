//! Files the store creates hold the user's data, so they are made readable
//! and writable by their owner only (mode 0600 on Unix) at the moment they
//! are created: never created open and narrowed afterwards, and never
//! through the process umask, which is process-wide and racy in a
//! multi-threaded program. A file that already exists keeps its mode. On
//! Windows nothing beyond the user's ACLs applies.

use std::fs::OpenOptions;

/// `OpenOptions` that create a file with mode 0600 on Unix; the caller
/// adds how it opens it. The mode applies only when the open creates the
/// file.
pub(crate) fn private_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}
