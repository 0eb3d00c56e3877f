//! Web Push: notifications for users with no tab open, through the push
//! service of each browser they subscribed in (RFC 8030), encrypted for
//! that browser (RFC 8291, aes128gcm) and signed by this server (RFC 8292,
//! VAPID).
//!
//! - [`vapid`]: the server's key pair and the signed token.
//! - [`endpoint`]: where pushes may be sent (https, public addresses only).

pub mod endpoint;
pub mod vapid;
