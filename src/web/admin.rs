//! `/admin`: running the community. Admins only (anyone else gets 403);
//! every change is a POST from this page, under the cross-origin rule like
//! every form, and leads back to it.

use axum::{
    Form,
    extract::{Query, State, rejection::FormRejection},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    AppState,
    error::AppError,
    pages::{AdminPage, InviteLine, RoomLine, UserLine, Viewer, render},
};
use crate::{
    accounts::{AuthSession, INVITE_LIFETIME, new_invite_token, token_hash},
    domain::{Ending, RegistrationMode, Role, User},
    store::{AccountChangeError, Actor, RoomError},
};

const ADMINS_ONLY: &str = "This page is for the admins of this Lobby.";

/// The viewer, if an admin as far as this request knows; a 403 for anyone
/// else. Every change checks again where it is made (`store::Actor`).
fn admin(auth: &AuthSession) -> Result<User, AppError> {
    match &auth.user {
        Some(user) if user.is_admin() => Ok(user.clone()),
        _ => Err(AppError::Forbidden(ADMINS_ONLY)),
    }
}

/// The admin and their session, as the actor of a change.
fn admin_actor(auth: &AuthSession) -> Result<(User, Actor), AppError> {
    let viewer = admin(auth)?;
    let session = auth.session.id().ok_or(AppError::Forbidden(ADMINS_ONLY))?;
    let actor = Actor::User { user: viewer.id, session };
    Ok((viewer, actor))
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// What the page says after each change.
#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn done_words(done: &str) -> Option<&'static str> {
    Some(match done {
        "banned" => "Banned: their sessions have ended and they cannot log in.",
        "unbanned" => "Unbanned: they can log in again.",
        "role" => "The role is changed.",
        "registration" => "The registration mode is saved.",
        "revoked" => "The invite link is revoked.",
        "archived" => "The room is archived: it is gone from every list, and its messages are kept.",
        _ => return None,
    })
}

struct Said {
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    new_invite: Option<String>,
}

impl Said {
    fn nothing() -> Self {
        Self { status: StatusCode::OK, notice: None, error: None, new_invite: None }
    }

    fn refused(status: StatusCode, error: impl Into<String>) -> Self {
        Self { status, error: Some(error.into()), ..Self::nothing() }
    }
}

async fn admin_page(state: &AppState, viewer: &User, said: Said) -> Result<Response, AppError> {
    let users = state.store.all_users().await?;
    let invites = state.store.invites().await?;
    let rooms = state.store.all_rooms().await?;
    let now = now_secs();
    let page = AdminPage {
        viewer: Some(Viewer::of(viewer)),
        users: users
            .iter()
            .map(|u| UserLine::of(u, state.realtime.is_online(&u.username), viewer.id))
            .collect(),
        registration: state.store.registration_mode(state.registration).await?,
        modes: RegistrationMode::ALL,
        invites: invites.iter().map(|i| InviteLine::of(i, now)).collect(),
        rooms: rooms
            .into_iter()
            .map(|(id, name, kind, members)| RoomLine::of(id, name, kind, members))
            .collect(),
        new_invite: said.new_invite,
        notice: said.notice,
        error: said.error,
    };
    Ok(render(said.status, &page))
}

pub async fn page(
    State(state): State<AppState>,
    auth: AuthSession,
    Query(done): Query<Done>,
) -> Result<Response, AppError> {
    if auth.user.is_none() {
        return Ok(Redirect::to("/?next=/admin").into_response());
    }
    let viewer = admin(&auth)?;
    let notice = done.done.as_deref().and_then(done_words).map(str::to_owned);
    admin_page(&state, &viewer, Said { notice, ..Said::nothing() }).await
}

#[derive(Debug, Deserialize)]
pub struct UserForm {
    user: Option<String>,
    role: Option<String>,
}

/// The user a form names, by id.
fn user_id(form: &UserForm) -> Option<i64> {
    form.user.as_deref()?.parse().ok()
}

/// A refused change, shown on the page: 404 for nobody, 409 for the rest.
async fn refused(state: &AppState, viewer: &User, e: AccountChangeError) -> Result<Response, AppError> {
    let status = match e {
        AccountChangeError::Store(e) => return Err(e.into()),
        AccountChangeError::NotAllowed => return Err(AppError::Forbidden(NO_LONGER)),
        AccountChangeError::NotFound => StatusCode::NOT_FOUND,
        AccountChangeError::Yourself | AccountChangeError::LastAdmin | AccountChangeError::HasPassword => {
            StatusCode::CONFLICT
        }
    };
    admin_page(state, viewer, Said::refused(status, e.to_string())).await
}

const NO_USER: &str = "The form names no user.";
/// An admin whose role, ban or session changed while the request was on its way.
const NO_LONGER: &str = "You are no longer an admin of this Lobby, or your session has ended.";

/// The admin and the user the form names; or, when it names nobody, the
/// page saying so.
async fn admin_and_target(
    state: &AppState,
    auth: &AuthSession,
    form: Result<Form<UserForm>, FormRejection>,
) -> Result<Result<(User, Actor, i64, UserForm), Response>, AppError> {
    let (viewer, actor) = admin_actor(auth)?;
    let Form(form) = form?;
    match user_id(&form) {
        Some(target) => Ok(Ok((viewer, actor, target, form))),
        None => {
            let page = admin_page(state, &viewer, Said::refused(StatusCode::UNPROCESSABLE_ENTITY, NO_USER));
            Ok(Err(page.await?))
        }
    }
}

/// After a change to an account: this node carries out the ending the
/// change made (every other node hears of it from the database), and the
/// admin is back on the page with `done` said; or the page says why nothing
/// changed.
async fn changed(
    state: &AppState,
    viewer: &User,
    outcome: Result<Ending, AccountChangeError>,
    done: &str,
) -> Result<Response, AppError> {
    match outcome {
        Ok(ending) => {
            state.endings.apply(&ending).await;
            Ok(Redirect::to(&format!("/admin?done={done}")).into_response())
        }
        Err(e) => refused(state, viewer, e).await,
    }
}

pub async fn ban(
    State(state): State<AppState>,
    auth: AuthSession,
    form: Result<Form<UserForm>, FormRejection>,
) -> Result<Response, AppError> {
    let (viewer, actor, target, _) = match admin_and_target(&state, &auth, form).await? {
        Ok(named) => named,
        Err(page) => return Ok(page),
    };
    let outcome = state.store.ban(target, actor).await.inspect(|_| {
        tracing::info!(user.id = target, by = viewer.id, "banned");
    });
    changed(&state, &viewer, outcome, "banned").await
}

pub async fn unban(
    State(state): State<AppState>,
    auth: AuthSession,
    form: Result<Form<UserForm>, FormRejection>,
) -> Result<Response, AppError> {
    let (viewer, actor, target, _) = match admin_and_target(&state, &auth, form).await? {
        Ok(named) => named,
        Err(page) => return Ok(page),
    };
    let outcome = state.store.unban(target, actor).await.inspect(|_| {
        tracing::info!(user.id = target, by = viewer.id, "unbanned");
    });
    changed(&state, &viewer, outcome, "unbanned").await
}

pub async fn set_role(
    State(state): State<AppState>,
    auth: AuthSession,
    form: Result<Form<UserForm>, FormRejection>,
) -> Result<Response, AppError> {
    let (viewer, actor, target, form) = match admin_and_target(&state, &auth, form).await? {
        Ok(named) => named,
        Err(page) => return Ok(page),
    };
    let role = match form.role.as_deref() {
        Some("admin") => Role::Admin,
        Some("member") => Role::Member,
        _ => {
            let said = Said::refused(StatusCode::UNPROCESSABLE_ENTITY, "A role is admin or member.");
            return admin_page(&state, &viewer, said).await;
        }
    };
    let outcome = state.store.set_role(target, role, actor).await.inspect(|_| {
        tracing::info!(user.id = target, by = viewer.id, %role, "role changed");
    });
    changed(&state, &viewer, outcome, "role").await
}

#[derive(Debug, Deserialize)]
pub struct ModeForm {
    mode: Option<String>,
}

pub async fn registration(
    State(state): State<AppState>,
    auth: AuthSession,
    form: Result<Form<ModeForm>, FormRejection>,
) -> Result<Response, AppError> {
    let (viewer, actor) = admin_actor(&auth)?;
    let Form(form) = form?;
    let Some(Ok(mode)) = form.mode.as_deref().map(str::parse::<RegistrationMode>) else {
        let said = Said::refused(StatusCode::UNPROCESSABLE_ENTITY, "Choose open, invite or closed.");
        return admin_page(&state, &viewer, said).await;
    };
    if let Err(e) = state.store.set_registration_mode(mode, actor).await {
        return refused(&state, &viewer, e).await;
    }
    tracing::info!(%mode, by = viewer.id, "registration mode set");
    Ok(Redirect::to("/admin?done=registration").into_response())
}

/// Creates an invite and shows its link, once: only its hash is kept.
pub async fn create_invite(State(state): State<AppState>, auth: AuthSession) -> Result<Response, AppError> {
    let (viewer, actor) = admin_actor(&auth)?;
    let token = new_invite_token();
    let now = now_secs();
    let expires = now + INVITE_LIFETIME.as_secs() as i64;
    if let Err(e) = state.store.create_invite(&token_hash(&token), actor, now, expires).await {
        return refused(&state, &viewer, e).await;
    }
    let link = format!("{}/join/{token}", state.origin.as_str());
    let said = Said {
        status: StatusCode::CREATED,
        notice: Some("An invite link is ready: copy it now, it is shown only once.".to_owned()),
        new_invite: Some(link),
        ..Said::nothing()
    };
    admin_page(&state, &viewer, said).await
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    invite: Option<String>,
}

pub async fn revoke_invite(
    State(state): State<AppState>,
    auth: AuthSession,
    form: Result<Form<InviteForm>, FormRejection>,
) -> Result<Response, AppError> {
    let (viewer, actor) = admin_actor(&auth)?;
    let Form(form) = form?;
    let id = form.invite.as_deref().and_then(|i| i.parse().ok());
    let revoked = match id {
        Some(id) => state.store.revoke_invite(id, now_secs(), actor).await,
        None => Ok(false),
    };
    match revoked {
        Err(e) => refused(&state, &viewer, e).await,
        Ok(true) => Ok(Redirect::to("/admin?done=revoked").into_response()),
        Ok(false) => {
            let said = Said::refused(StatusCode::NOT_FOUND, "There is no such invite left to revoke.");
            admin_page(&state, &viewer, said).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RoomForm {
    room: Option<String>,
}

/// Archives a room (any open or private one but the lobby): it leaves every
/// member's list and tabs at once, on every node; its messages are kept.
pub async fn archive_room(
    State(state): State<AppState>,
    auth: AuthSession,
    form: Result<Form<RoomForm>, FormRejection>,
) -> Result<Response, AppError> {
    let (viewer, actor) = admin_actor(&auth)?;
    let Form(form) = form?;
    let Some(room) = form.room.as_deref().and_then(|r| r.parse::<i64>().ok()).filter(|r| *r > 0) else {
        let said = Said::refused(StatusCode::UNPROCESSABLE_ENTITY, "The form names no room.");
        return admin_page(&state, &viewer, said).await;
    };
    let status = match state.store.archive_room(actor, room).await {
        Ok(()) => {
            tracing::info!(room, by = viewer.id, "room archived");
            return Ok(Redirect::to("/admin?done=archived").into_response());
        }
        Err(RoomError::Store(e)) => return Err(e.into()),
        Err(RoomError::NotAllowed | RoomError::Forbidden) => return Err(AppError::Forbidden(NO_LONGER)),
        Err(RoomError::NotFound) => StatusCode::NOT_FOUND,
        Err(_) => StatusCode::CONFLICT,
    };
    let said = Said::refused(status, "There is no such room left to archive, or it cannot be archived.");
    admin_page(&state, &viewer, said).await
}
