//! Chat: the log written in batches, read back in order, kept in memory.
//!
//! - [`writer`]: what this node adds to the log: new messages in batches
//!   (group commit), edits and deletes one by one.
//! - [`follower`]: the reader: follows the log by position and publishes what
//!   it reads to this node's sockets and history. Every node publishes only
//!   what it reads back, the writer's node included, so all show one order.
//! - [`history`]: the recent messages in memory, for connects and catch-up.

pub mod follower;
pub mod history;
pub mod writer;
