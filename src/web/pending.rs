//! How many connections each client address has that have not finished a
//! request: from the accept, or from the first byte of the next request on
//! a kept-alive connection, until its headers and body have all arrived (or
//! its answer began). At most `max` per address: past that a new connection
//! is closed at once, and a kept-alive one that starts another request is
//! closed. Deadlines bound how long each may take; this bounds how many one
//! address may hold, so a client dribbling bytes on hundreds of
//! connections cannot use up the process's file descriptors and keep
//! everyone else out.
//!
//! What does not count: idle kept-alive connections and open WebSockets
//! (they have finished their requests), so a class behind one address is
//! not limited; and connections from `TRUSTED_PROXIES`, which are not the
//! client (a proxy holds its own clients to its own limits).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

/// The count of one listener's connections with a request unfinished, per
/// client address.
#[derive(Debug)]
pub struct PendingLimit {
    max: usize,
    /// A std mutex: held for a map lookup, twice per request at most, never
    /// across an await. Addresses with none pending are removed.
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its address's count: held while it has a
/// request unfinished, given back when the request has arrived, and when
/// the connection ends.
#[derive(Debug)]
pub struct Pending {
    limit: Arc<PendingLimit>,
    client: IpAddr,
    held: AtomicBool,
}

impl PendingLimit {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max, counts: Mutex::default() })
    }

    /// A new connection from `client`, counted from now (it has a request
    /// to send); `None` if that address already has `max` pending.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Option<Arc<Pending>> {
        let pending = Pending { limit: self.clone(), client, held: AtomicBool::new(false) };
        pending.hold().then(|| Arc::new(pending))
    }

    /// How many connections `client` has pending.
    pub fn of(&self, client: IpAddr) -> usize {
        self.counts().get(&client).copied().unwrap_or(0)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // A panic while holding the lock leaves plain counts behind: go on.
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Pending {
    /// A request starts: counts this connection, unless it counts already;
    /// false if its address has `max` pending (the connection must close).
    pub fn hold(&self) -> bool {
        if self.held.load(Ordering::Acquire) {
            return true;
        }
        let mut counts = self.limit.counts();
        let count = counts.entry(self.client).or_insert(0);
        if *count >= self.limit.max {
            if *count == 0 {
                counts.remove(&self.client);
            }
            return false;
        }
        *count += 1;
        self.held.store(true, Ordering::Release);
        true
    }

    /// The request has arrived (or is being answered): not pending any more.
    pub fn release(&self) {
        if !self.held.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut counts = self.limit.counts();
        if let Some(count) = counts.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_address_may_have_max_pending() {
        let limit = PendingLimit::new(2);
        let a = limit.admit(ip("10.0.0.1")).unwrap();
        let b = limit.admit(ip("10.0.0.1")).unwrap();
        assert!(limit.admit(ip("10.0.0.1")).is_none(), "a third is refused");
        assert!(limit.admit(ip("10.0.0.2")).is_some(), "another address is not affected");
        // One request arrives: its connection idles, and a new one fits.
        a.release();
        let c = limit.admit(ip("10.0.0.1")).unwrap();
        // The idle one starts another request: no room for it.
        assert!(!a.hold());
        drop(b);
        assert!(a.hold(), "a connection that ended made room");
        assert!(a.hold(), "holding twice counts once");
        assert_eq!(limit.of(ip("10.0.0.1")), 2);
        drop((a, c));
        assert_eq!(limit.of(ip("10.0.0.1")), 0);
        assert!(limit.counts().is_empty(), "nothing kept for addresses with none pending");
    }
}
