//! Chat: the log written in batches, read back in order, kept in memory.
//!
//! - [`sequencer`]: the one writer per node: drains what is queued and
//!   commits it in one transaction (group commit).
//! - [`tail`]: the reader: follows the log by position and publishes what it
//!   reads to this node's sockets and history. Every node publishes only what
//!   it reads back, the writer included, so all nodes show one order.
//! - [`history`]: the recent messages in memory, for connects and catch-up.

pub mod history;
pub mod sequencer;
pub mod tail;
