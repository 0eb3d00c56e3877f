//! The things Lobby is about, as plain types with their rules: a value of
//! one of these is valid by construction. No I/O here, and nothing from the
//! layers above: the store, the live half and the web all speak these.
//!
//! - [`username`], [`role`], [`registration`], [`user`]: accounts.
//! - [`identity`]: identities at other sites (GitHub, OpenID Connect) that sign in to an account.
//! - [`chat`]: what a message may say, and who it mentions.
//! - [`room`]: rooms, their names and kinds, and members' levels.
//! - [`file`]: files shared in rooms: names, kinds judged by their bytes.
//! - [`push`]: Web Push subscriptions, who is pushed, and what a push says.
//! - [`search`]: the search query language, and the snippet of a result.
//! - [`session`]: how sessions end.

pub mod chat;
pub mod file;
pub mod identity;
pub mod push;
pub mod registration;
pub mod role;
pub mod room;
pub mod search;
pub mod session;
pub mod user;
pub mod username;

pub use chat::{ChatText, InvalidText, Message};
pub use file::{Attachment, FileKind, FileName};
pub use identity::{Identity, IdentityKey, IdentityProfile, PendingSignIn, Provider, UnknownProvider};
pub use registration::{RegistrationMode, UnknownMode};
pub use role::Role;
pub use room::{DIRECT_MAX, LOBBY, Level, RoomKind, RoomName, RoomView, Topic};
pub use search::{InvalidQuery, SearchQuery};
pub use session::{Ending, Reason};
pub use user::User;
pub use username::{DerivedNames, InvalidUsername, USERNAME_RULE, Username};
