//! Sessions: how long they live, where they are kept, how they end.
//!
//! - [`policy`]: idle and absolute expiry, and what a logged-in session carries.
//! - [`store`]: tower-sessions' store over the database (saving updates, never recreates).
//! - [`cache`]: a short-lived read-through copy in front of the database.
//! - [`endings`]: carrying out an ending here, in one step, whoever made it.
//! - [`sweep`]: the periodic check of sessions with open sockets.
//! - [`user_agent`]: "Firefox on Linux", for the account page.

pub mod cache;
pub mod endings;
pub mod policy;
pub mod store;
pub mod sweep;
pub mod user_agent;

pub use cache::{CachedSessions, Sessions};
pub use endings::{Endings, OnEnding};
pub use policy::SessionPolicy;
pub use store::DatabaseSessions;
