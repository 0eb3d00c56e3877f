//! Close codes of the contract, and how each ending closes a socket.

use crate::domain::Reason;

pub const GOING_AWAY: u16 = 1001;
pub const UNSUPPORTED: u16 = 1003;
pub const POLICY: u16 = 1008;
pub const TRY_AGAIN_LATER: u16 = 1013;
pub const SESSION_ENDED: u16 = 4401;
pub const BANNED: u16 = 4403;
/// The session goes on under a new id (its password was changed here):
/// reconnect, with the new cookie.
pub const SESSION_RENEWED: u16 = 4409;

/// The code a socket of an ended session closes with (`None`: it stays open).
pub fn for_reason(reason: Reason) -> Option<u16> {
    match reason {
        Reason::Ended => Some(SESSION_ENDED),
        Reason::Renewed => Some(SESSION_RENEWED),
        Reason::Banned => Some(BANNED),
        Reason::AccountChanged => None,
    }
}
