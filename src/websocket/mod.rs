//! The WebSocket protocol (RFC 6455) on an upgraded connection, server
//! side, written for a crowd of mostly idle sockets.
//!
//! A general-purpose library keeps a read buffer and a write buffer per
//! socket for the socket's life, and copies every frame it sends into the
//! latter. Here an idle socket holds neither: bytes read are kept only
//! while a frame is incomplete, and a frame to send is queued as a header
//! and a reference to the payload, which is serialized once and shared by
//! every socket it goes to. A flush hands the queue to the kernel in one
//! vectored write and frees it.
//!
//! - [`frame`]: frame headers, read and written.
//! - [`socket`]: reading messages, queuing frames, closing.
//! - [`stream`]: the TCP stream, shared: a delivery writes frames into it
//!   directly while the socket's task is not writing.

pub mod frame;
pub mod socket;
pub mod stream;

pub use socket::{Incoming, ReadError, Socket};
pub use stream::{Direct, Stream};

/// A client frame that breaks the protocol; the socket is closed with the
/// code it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// 1002, with what was wrong.
    Protocol(&'static str),
    /// 1007: a text message or close reason that is not UTF-8.
    NotUtf8,
    /// 1009: a frame or message over the limit.
    TooBig,
}

impl Violation {
    pub fn close_code(self) -> u16 {
        match self {
            Self::Protocol(_) => 1002,
            Self::NotUtf8 => 1007,
            Self::TooBig => 1009,
        }
    }

    /// The close frame's reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Protocol(_) => "protocol error",
            Self::NotUtf8 => "text that is not UTF-8",
            Self::TooBig => "frame too large",
        }
    }
}

impl std::error::Error for Violation {}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Protocol(what) => write!(f, "protocol error: {what}"),
            Self::NotUtf8 => f.write_str("text that is not UTF-8"),
            Self::TooBig => f.write_str("a frame or message over the size limit"),
        }
    }
}
