//! `/account`: a user's own account. Change the password (which ends every
//! other session, and gives this one a new id), or set one for an account
//! made through a provider; see where you are logged in, and end a session
//! there; see the providers you can log in with, connect one (through
//! `/auth/PROVIDER`, see `sso`) and disconnect one.

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
    pages::{AccountPage, IdentityLine, SessionLine, SignInButton, Viewer, render},
    sso::SignInRoutes,
};
use crate::{
    accounts::{AuthSession, Password},
    domain::{Provider, User, Username},
    store::{AccountChangeError, Actor, IdentityChangeError},
};

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
    /// Which provider was connected (`sso`).
    provider: Option<String>,
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
    let identities = state.store.identities_of(user.id).await?;
    let routes = &state.sign_in;
    // The last way in stays: no password, one identity.
    let can_unlink = user.has_password() || identities.len() > 1;
    let current_issuer = |provider: Provider| routes.sso().issuer(provider);
    let lines = identities
        .iter()
        .map(|identity| {
            let provider = identity.key.provider;
            let label = if current_issuer(provider) == Some(identity.key.issuer.as_str()) {
                routes.label(provider).to_owned()
            } else {
                format!("{} (an earlier setting: {})", routes.label(provider), identity.key.issuer)
            };
            IdentityLine::of(identity, label, can_unlink)
        })
        .collect();
    let connect = routes
        .providers()
        .filter(|provider| {
            !identities.iter().any(|i| {
                i.key.provider == *provider && current_issuer(*provider) == Some(i.key.issuer.as_str())
            })
        })
        .map(|provider| SignInButton {
            provider: provider.as_str(),
            label: format!("Connect {}", routes.label(provider)),
            href: SignInRoutes::href(provider, "", ""),
        })
        .collect();
    let page = AccountPage {
        viewer: Some(Viewer::of(user)),
        sessions: sessions.iter().map(|s| SessionLine::of(s, current.as_deref())).collect(),
        identities: lines,
        connect,
        has_password: user.has_password(),
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
    let provider = done.provider.as_deref().and_then(|p| p.parse::<Provider>().ok());
    let label = provider.map(|p| state.sign_in.label(p).to_owned());
    let notice = match (done.done.as_deref(), label) {
        (Some("password"), _) => Some("Your password is changed. Your other sessions have ended.".to_owned()),
        (Some("password-set"), _) => Some(
            "Your password is set: you can log in with it too. Your other sessions have ended.".to_owned(),
        ),
        (Some("ended"), _) => Some("That session has ended.".to_owned()),
        (Some("linked"), Some(label)) => Some(format!("{label} is connected: you can log in with it.")),
        (Some("unlinked"), _) => Some("That sign-in is disconnected from your account.".to_owned()),
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
        let secs = super::auth::retry_secs(throttled);
        let error = format!("Too many wrong passwords. Try again in {secs} seconds.");
        let page =
            account_page(&state, &auth, &user, StatusCode::TOO_MANY_REQUESTS, None, Some(error)).await?;
        return Ok(super::auth::with_retry_after(page, throttled));
    }
    if !state.accounts.verify(&user, &Password::for_login(current)).await? {
        state.throttles.failed(&user.username, client).await?;
        let error = refuse("That is not your current password. Nothing was changed.");
        return account_page(&state, &auth, &user, StatusCode::UNPROCESSABLE_ENTITY, None, Some(error)).await;
    }
    new_password(&state, &mut auth, &headers, &user, &new, Replacing::Current).await
}

/// Which password a new one replaces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replacing {
    /// The current one, checked already.
    Current,
    /// None: the account was made through a provider.
    Nothing,
}

/// Sets `raw` as the user's password, if it follows the rules (else the
/// page says which, `422`), in a transaction that checks the session is
/// still live (and, for a first password, that there was none). Every
/// other session of the user ends (here, and the database tells the other
/// nodes), and this one goes on under a new id with the new session key:
/// the old id's deletion tells its sockets to reconnect with the new cookie.
async fn new_password(
    state: &AppState,
    auth: &mut AuthSession,
    headers: &HeaderMap,
    user: &User,
    raw: &str,
    replacing: Replacing,
) -> Result<Response, AppError> {
    let name = Username::parse(&user.username).map_err(|e| AppError::Internal(e.to_string().into()))?;
    let new = match Password::new(raw, &name) {
        Ok(new) => new,
        Err(e) => {
            let error = e.to_string();
            return account_page(state, auth, user, StatusCode::UNPROCESSABLE_ENTITY, None, Some(error))
                .await;
        }
    };
    let Some(this) = auth.session.id() else { return Err(AppError::Forbidden("Log in first.")) };
    let hash = state.accounts.hash(&new).await?;
    let changed = match replacing {
        Replacing::Current => state.store.change_password(user.id, &hash, this).await,
        Replacing::Nothing => state.store.set_first_password(user.id, &hash, this).await,
    };
    let ending = match changed {
        Ok(ending) => ending,
        // The session ended while the request was on its way: as if logged out.
        Err(AccountChangeError::NotAllowed) => return Err(AppError::Forbidden("Log in first.")),
        Err(e @ AccountChangeError::HasPassword) => {
            return account_page(state, auth, user, StatusCode::CONFLICT, None, Some(e.to_string())).await;
        }
        Err(e) => return Err(AppError::Unavailable(e.into())),
    };
    tracing::info!(
        user.id = user.id,
        ended = ending.sessions.len(),
        first = replacing == Replacing::Nothing,
        "password set"
    );
    state.endings.apply(&ending).await;
    let Some(changed) = state.store.user(user.id).await? else { return Err(AppError::NotFound) };
    state.sessions.renewing(this);
    auth.session.cycle_id().await?;
    auth.login(&changed).await?;
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    state.session_policy.started(&auth.session, user.id, agent).await?;
    let done = match replacing {
        Replacing::Current => "/account?done=password",
        Replacing::Nothing => "/account?done=password-set",
    };
    Ok(Redirect::to(done).into_response())
}

#[derive(Debug, Deserialize)]
pub struct SetPasswordForm {
    new: Option<String>,
}

/// `POST /account/password/set`: the first password of an account made
/// through a provider. The password rules hold, and it ends the other
/// sessions as a change does.
pub async fn set_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut auth: AuthSession,
    form: Result<Form<SetPasswordForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    let Some(user) = auth.user.clone() else { return Err(AppError::Forbidden("Log in first.")) };
    if user.has_password() {
        let error = AccountChangeError::HasPassword.to_string();
        return account_page(&state, &auth, &user, StatusCode::CONFLICT, None, Some(error)).await;
    }
    let Some(new) = form.new else {
        let error = "Enter the password to set.".to_owned();
        return account_page(&state, &auth, &user, StatusCode::UNPROCESSABLE_ENTITY, None, Some(error)).await;
    };
    new_password(&state, &mut auth, &headers, &user, &new, Replacing::Nothing).await
}

#[derive(Debug, Deserialize)]
pub struct UnlinkForm {
    identity: Option<String>,
}

/// `POST /account/identities/unlink`: disconnects one of the user's
/// identities, unless it is the last way into the account.
pub async fn unlink(
    State(state): State<AppState>,
    auth: AuthSession,
    form: Result<Form<UnlinkForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    let Some(user) = auth.user.clone() else { return Err(AppError::Forbidden("Log in first.")) };
    let Some(this) = auth.session.id() else { return Err(AppError::Forbidden("Log in first.")) };
    let identity = form.identity.as_deref().and_then(|id| id.trim().parse::<i64>().ok());
    let Some(identity) = identity else {
        let error = IdentityChangeError::NotFound.to_string();
        return account_page(&state, &auth, &user, StatusCode::NOT_FOUND, None, Some(error)).await;
    };
    let refused =
        match state.store.unlink_identity(identity, Actor::User { user: user.id, session: this }).await {
            Ok(()) => {
                tracing::info!(user.id = user.id, identity, "identity unlinked");
                return Ok(Redirect::to("/account?done=unlinked").into_response());
            }
            Err(IdentityChangeError::Store(e)) => return Err(e.into()),
            Err(IdentityChangeError::NotAllowed) => return Err(AppError::Forbidden("Log in first.")),
            Err(refused) => refused,
        };
    let status = match refused {
        IdentityChangeError::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::CONFLICT,
    };
    let error = refused.to_string();
    account_page(&state, &auth, &user, status, None, Some(error)).await
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
