//! The WebSocket's wire format.
//!
//! - [`client`]: what clients send, and refusals.
//! - [`frames`]: what the server sends, serialized once.
//! - [`close`]: close codes.

pub mod client;
pub mod close;
pub mod frames;

pub use client::{ClientEvent, Refusal};
pub use frames::{MessageJson, frame};

/// The largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
