//! The askama templates (the course's pug views) and their render helper.

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

use super::error::AppError;
use crate::{
    domain::{Identity, LOBBY, RegistrationMode, RoomKind, User},
    store::{AccountSession, Invite, InviteState, UserRow},
};

/// Who is looking at a page (the header shows their name and links).
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub admin: bool,
}

impl Viewer {
    pub fn of(user: &User) -> Self {
        Self { name: user.username.clone(), admin: user.is_admin() }
    }
}

/// A "Log in with …" button (or, on the account page, "Connect …").
#[derive(Debug, Clone)]
pub struct SignInButton {
    /// `github` or `oidc`: the element is `#login-PROVIDER` (`#connect-PROVIDER`).
    pub provider: &'static str,
    pub label: String,
    pub href: String,
}

#[derive(Template, Default)]
#[template(path = "home.html")]
pub struct HomePage {
    pub viewer: Option<Viewer>,
    /// The configured providers' buttons (none while logged in).
    pub sign_in: Vec<SignInButton>,
    /// Why a sign-in through a provider did not happen.
    pub sign_in_error: Option<String>,
    /// Local path to go to after login (already checked by `LocalPath`).
    pub next: String,
    pub login_error: Option<String>,
    pub login_username: String,
    pub register_error: Option<String>,
    pub register_username: String,
    pub registration: RegistrationMode,
    /// The invite token the registration form carries (from `/join/TOKEN`).
    pub invite: String,
}

#[derive(Template)]
#[template(path = "profile.html")]
pub struct ProfilePage {
    pub viewer: Option<Viewer>,
    pub username: String,
}

#[derive(Template)]
#[template(path = "chat.html")]
pub struct ChatPage {
    pub viewer: Option<Viewer>,
    pub username: String,
    pub admin: bool,
    /// The edit window, in seconds (the page offers edits only within it).
    pub edit_window: u64,
    /// The room the page opens on.
    pub room: i64,
    /// The page's title before " · Lobby": "Chat", or the room's and "Chat".
    pub title: String,
    /// The room's name, or a direct room's other people.
    pub heading: String,
    /// The ids of the rooms this user made, separated by spaces.
    pub created: String,
}

/// One of the viewer's sessions, as the account page shows it.
pub struct SessionLine {
    pub handle: String,
    pub agent: String,
    pub created: String,
    pub last_seen: String,
    pub this_one: bool,
}

impl SessionLine {
    pub fn of(session: &AccountSession, current: Option<&str>) -> Self {
        Self {
            handle: session.handle.clone(),
            agent: session.agent.clone(),
            created: when(session.created_at),
            last_seen: when(session.last_seen),
            this_one: current == Some(session.session_id.as_str()),
        }
    }
}

/// An identity linked to the viewer's account, as the account page shows it.
/// (No picture: the pages load images from this site only.)
pub struct IdentityLine {
    pub id: i64,
    /// `github` or `oidc`.
    pub provider: &'static str,
    /// "GitHub", `OIDC_NAME`, or what it was before the settings changed.
    pub label: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub linked: String,
    pub last_login: Option<String>,
    pub login_count: i64,
    /// False while it is the account's only way in.
    pub can_unlink: bool,
}

impl IdentityLine {
    pub fn of(identity: &Identity, label: String, can_unlink: bool) -> Self {
        Self {
            id: identity.id,
            provider: identity.key.provider.as_str(),
            label,
            display_name: identity.profile.display_name.clone(),
            email: identity.profile.email.clone(),
            linked: when(identity.created_at),
            last_login: identity.last_login_at.map(when),
            login_count: identity.login_count,
            can_unlink,
        }
    }
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub viewer: Option<Viewer>,
    pub sessions: Vec<SessionLine>,
    pub identities: Vec<IdentityLine>,
    /// Providers configured and not linked yet.
    pub connect: Vec<SignInButton>,
    /// False for an account made through a provider, until a password is set.
    pub has_password: bool,
    /// What the last change did, or why it was refused.
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// A user, as the admin page shows them.
pub struct UserLine {
    pub id: i64,
    pub username: String,
    pub admin: bool,
    pub banned: bool,
    pub online: bool,
    pub joined: String,
    pub is_viewer: bool,
}

impl UserLine {
    pub fn of(row: &UserRow, online: bool, viewer: i64) -> Self {
        Self {
            id: row.id,
            username: row.username.clone(),
            admin: row.role() == crate::domain::Role::Admin,
            banned: row.banned_at.is_some(),
            online,
            joined: when(row.created_at),
            is_viewer: row.id == viewer,
        }
    }
}

/// An invite, as the admin page shows it.
pub struct InviteLine {
    pub id: i64,
    pub created_by: String,
    pub created: String,
    pub expires: String,
    /// "usable", "used by bob", "revoked", "expired".
    pub state: String,
    pub usable: bool,
}

impl InviteLine {
    pub fn of(invite: &Invite, now: i64) -> Self {
        let state = invite.state(now);
        Self {
            id: invite.id,
            created_by: invite.created_by.clone(),
            created: when(invite.created_at),
            expires: when(invite.expires_at),
            state: match state {
                InviteState::Usable => "Not used yet".to_owned(),
                InviteState::Used => format!("Used by {}", invite.used_by.as_deref().unwrap_or("someone")),
                InviteState::Revoked => "Revoked".to_owned(),
                InviteState::Expired => "Expired".to_owned(),
            },
            usable: state == InviteState::Usable,
        }
    }
}

/// A room, as the admin page shows it.
pub struct RoomLine {
    pub id: i64,
    pub name: String,
    pub members: i64,
    /// The lobby: everyone's, never archived.
    pub lobby: bool,
    pub open: bool,
}

impl RoomLine {
    pub fn of(id: i64, name: String, kind: RoomKind, members: i64) -> Self {
        Self { id, name, members, lobby: id == LOBBY, open: kind == RoomKind::Open }
    }
}

#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminPage {
    pub viewer: Option<Viewer>,
    pub users: Vec<UserLine>,
    pub registration: RegistrationMode,
    pub modes: [RegistrationMode; 3],
    pub invites: Vec<InviteLine>,
    /// Every room but the direct ones, the lobby first.
    pub rooms: Vec<RoomLine>,
    /// A link just created: shown once, never stored.
    pub new_invite: Option<String>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// A moment (unix seconds) as the pages print it: UTC, to the minute.
pub fn when(unix: i64) -> String {
    const FORMAT: &[time::format_description::FormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub viewer: Option<Viewer>,
    pub title: &'a str,
    pub message: &'a str,
}

/// Renders a page with a status. A template that fails to render is a bug
/// of ours: it becomes a logged 500, never a panic.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => AppError::Internal(err.into()).into_response(),
    }
}

/// The plain-text last resort for when the error page itself cannot render.
pub fn render_error(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage { viewer: None, title, message };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "the error page failed to render");
            (status, format!("{title}\n\n{message}\n")).into_response()
        }
    }
}
