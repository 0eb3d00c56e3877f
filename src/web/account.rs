//! `/account`: a user's own account. Change the password (which ends every
//! other session, and gives this one a new id), see where you are logged
//! in, and end a session there.

use axum::{
    Form,
    extract::{Query, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    AppState,
    client::ClientAddr,
    error::AppError,
    pages::{AccountPage, SessionLine, Viewer, render},
};
use crate::{
    accounts::{AuthSession, Password},
    domain::{User, Username},
    store::{AccountChangeError, Actor},
};

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn account_page(
    state: &AppState,
    auth: &AuthSession,
    user: &User,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let current = auth.session.id().map(|id| id.to_string());
    let sessions = state.store.account_sessions(user.id, now_secs()).await?;
    let page = AccountPage {
        viewer: Some(Viewer::of(user)),
        sessions: sessions.iter().map(|s| SessionLine::of(s, current.as_deref())).collect(),
        notice,
        error,
    };
    Ok(render(status, &page))
}

pub async fn page(
    State(state): State<AppState>,
    auth: AuthSession,
    Query(done): Query<Done>,
) -> Result<Response, AppError> {
    let Some(user) = auth.user.clone() else { return Ok(Redirect::to("/?next=/account").into_response()) };
    let notice = match done.done.as_deref() {
        Some("password") => Some("Your password is changed. Your other sessions have ended.".to_owned()),
        Some("ended") => Some("That session has ended.".to_owned()),
        _ => None,
    };
    account_page(&state, &auth, &user, StatusCode::OK, notice, None).await
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    current: Option<String>,
    new: Option<String>,
}

pub async fn change_password(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    mut auth: AuthSession,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    let Some(user) = auth.user.clone() else { return Err(AppError::Forbidden("Log in first.")) };
    let refuse = |message: &str| message.to_owned();
    let (Some(current), Some(new)) = (form.current, form.new) else {
        let error = refuse("Enter your current password and a new one.");
        return account_page(&state, &auth, &user, StatusCode::UNPROCESSABLE_ENTITY, None, Some(error)).await;
    };
    // Guessing the current password here is throttled like guessing it at login.
    if let Err(throttled) = state.throttles.check_failures(&user.username, client).await? {
        let error =
            format!("Too many wrong passwords. Try again in {} seconds.", throttled.wait().as_secs().max(1));
        return account_page(&state, &auth, &user, StatusCode::TOO_MANY_REQUESTS, None, Some(error)).await;
    }
    if !state.accounts.verify(&user, &Password::for_login(current)).await? {
        state.throttles.failed(&user.username, client).await?;
        let error = refuse("That is not your current password. Nothing was changed.");
        return account_page(&state, &auth, &user, StatusCode::UNPROCESSABLE_ENTITY, None, Some(error)).await;
    }
    let name = Username::parse(&user.username).map_err(|e| AppError::Internal(e.to_string().into()))?;
    let new = match Password::new(&new, &name) {
        Ok(new) => new,
        Err(e) => {
            let error = e.to_string();
            return account_page(&state, &auth, &user, StatusCode::UNPROCESSABLE_ENTITY, None, Some(error))
                .await;
        }
    };
    let Some(this) = auth.session.id() else { return Err(AppError::Forbidden("Log in first.")) };
    let hash = state.accounts.hash(&new).await?;
    let ending = match state.store.change_password(user.id, &hash, this).await {
        Ok(ending) => ending,
        // The session ended while the request was on its way: as if logged out.
        Err(AccountChangeError::NotAllowed) => return Err(AppError::Forbidden("Log in first.")),
        Err(e) => return Err(AppError::Unavailable(e.into())),
    };
    state.endings.apply(&ending).await;
    tracing::info!(user.id = user.id, ended = ending.sessions.len(), "password changed");

    // This session goes on, under a new id and with the new session key;
    // the old id's deletion tells its sockets to reconnect with the new cookie.
    let Some(changed) = state.store.user(user.id).await? else { return Err(AppError::NotFound) };
    state.sessions.renewing(this);
    auth.session.cycle_id().await?;
    auth.login(&changed).await?;
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    state.session_policy.started(&auth.session, user.id, agent).await?;
    Ok(Redirect::to("/account?done=password").into_response())
}

#[derive(Debug, Deserialize)]
pub struct EndForm {
    session: Option<String>,
}

pub async fn end_session(
    State(state): State<AppState>,
    mut auth: AuthSession,
    form: Result<Form<EndForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    let Some(user) = auth.user.clone() else { return Err(AppError::Forbidden("Log in first.")) };
    const NOT_YOURS: &str = "You have no such session (it may have ended already).";
    let Some(handle) = form.session.filter(|h| !h.is_empty()) else {
        return Err(AppError::Missing(NOT_YOURS));
    };
    let Some(session) = state.store.session_by_handle(user.id, &handle).await? else {
        return Err(AppError::Missing(NOT_YOURS));
    };
    if auth.session.id() == Some(session) {
        // Ending this very session is logging out.
        auth.logout().await?;
        return Ok(Redirect::to("/").into_response());
    }
    let Some(this) = auth.session.id() else { return Err(AppError::Forbidden("Log in first.")) };
    match state.store.end_session_by(&session, Actor::User { user: user.id, session: this }).await {
        Ok(ending) => state.endings.apply(&ending).await,
        Err(AccountChangeError::NotAllowed) => return Err(AppError::Forbidden("Log in first.")),
        Err(e) => return Err(AppError::Unavailable(e.into())),
    }
    Ok(Redirect::to("/account?done=ended").into_response())
}
