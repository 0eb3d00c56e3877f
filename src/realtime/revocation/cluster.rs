//! What revocation adds on a cluster: sessions ended on any node close here
//! too, and no cached copy outlives the notification.

use super::Core;
use crate::store::Ending;

pub struct ClusterRevocation {
    core: Core,
}

impl ClusterRevocation {
    pub fn new(core: Core) -> Self {
        Self { core }
    }

    pub(super) fn core(&self) -> &Core {
        &self.core
    }

    /// A node (this one included) ended sessions, or changed an account:
    /// close the sockets here, and forget any cached copy so no request here
    /// can use them from now on.
    pub async fn heard(&self, ending: &Ending) {
        self.core.apply(ending).await;
    }

    /// The listener was away and may have missed endings: forget every cached
    /// session and account, then check the ones with sockets here against the database.
    pub async fn after_gap(&self) {
        self.core.sessions.forget_all();
        self.core.users.forget_all();
        super::registry::sweep(&self.core.registry, &self.core.sessions, &self.core.policy).await;
    }
}
