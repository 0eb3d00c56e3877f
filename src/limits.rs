//! Process-wide resource settings.
//!
//! The open-file limit decides how many sockets one process can hold.
//! Raising the soft limit to the hard one costs nothing, and knowing the
//! ceiling lets the server refuse upgrades cleanly (503) before accept()
//! starts failing.
//!
//! glibc's allocator raises its mmap threshold after a large block is freed,
//! after which blocks that size come from (and stay in) the heap: each argon2
//! run (19 MiB) then left memory resident, 380 MB after 60 registrations.
//! Pinning the threshold keeps large blocks mmapped and returned on free.

/// File descriptors kept back for the listener, the database and its WAL
/// files, logs, and HTTP requests that are not WebSockets.
const RESERVED_FDS: u64 = 256;

/// Blocks at least this large are mmapped and unmapped on free.
const MMAP_THRESHOLD: i32 = 1024 * 1024;

/// Pins glibc's mmap threshold (a fixed value also turns off its dynamic
/// raising). Other allocators already return large blocks; nothing to do.
pub fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts the allocator's tuning; it is safe to call
    // at any time and leaves the setting unchanged when it fails.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Raises the soft open-file limit to the hard limit; returns the limit now
/// in force (or `None` where it cannot be read).
pub fn raise_open_files() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "could not read or raise the open-file limit");
            None
        }
    }
}

/// How many WebSockets fit under `open_files`, keeping `RESERVED_FDS` free.
pub fn connection_ceiling(open_files: u64) -> usize {
    usize::try_from(open_files.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_leaves_room_for_everything_else() {
        assert_eq!(connection_ceiling(20_000), 19_744);
        assert_eq!(connection_ceiling(100), 1);
    }

    #[test]
    fn raising_never_lowers() {
        let before = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap().0;
        let after = raise_open_files().unwrap();
        assert!(after >= before);
    }
}
