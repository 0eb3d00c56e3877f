//! Carrying out an ending on this node, in one step ([`Endings::apply`]):
//! everything here that keeps something of a session or an account forgets
//! it, then the sockets close. The same step runs for an ending made here
//! and for one heard from another node.
//!
//! The parts that keep such things live in several layers (the session
//! cache here, the account cache in `accounts`, the sockets in `realtime`),
//! so each registers itself ([`Endings::register`]) rather than this module
//! naming layers above it.

use std::sync::{Arc, RwLock};

use crate::domain::Ending;

/// A part that must hear of endings.
#[async_trait::async_trait]
pub trait OnEnding: Send + Sync {
    /// Sessions or an account ended (or changed): forget it, close it.
    async fn ended(&self, ending: &Ending);
    /// Endings may have been missed (a gap in the notifications): forget
    /// every copy of anything.
    fn forget_all(&self) {}
}

/// Cheap to clone; every clone shares the parts registered.
#[derive(Clone, Default)]
pub struct Endings {
    /// In the order registered: caches before sockets, so a socket that
    /// reconnects at once finds the session gone.
    parts: Arc<RwLock<Vec<Arc<dyn OnEnding>>>>,
}

impl std::fmt::Debug for Endings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Endings")
    }
}

impl Endings {
    pub fn register(&self, part: Arc<dyn OnEnding>) {
        self.parts.write().unwrap_or_else(|p| p.into_inner()).push(part);
    }

    fn parts(&self) -> Vec<Arc<dyn OnEnding>> {
        self.parts.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub async fn apply(&self, ending: &Ending) {
        for part in self.parts() {
            part.ended(ending).await;
        }
    }

    pub fn forget_all(&self) {
        for part in self.parts() {
            part.forget_all();
        }
    }
}
