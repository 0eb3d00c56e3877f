//! The open-file limit decides how many sockets one process can hold.
//! Raising the soft limit to the hard one costs nothing, and knowing the
//! ceiling lets the server refuse upgrades cleanly (503) before accept()
//! starts failing.

/// File descriptors kept back for the listener, the database and its WAL
/// files, logs, and HTTP requests that are not WebSockets.
const RESERVED_FDS: u64 = 256;

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
