//! The login, registration and logout forms (passport-local's routes).

use axum::{
    Form,
    extract::{State, rejection::FormRejection},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::client::ClientAddr;
use super::{
    AppState,
    error::AppError,
    next::local_path,
    pages::{HomePage, render},
    site::home_page,
};
use crate::{
    accounts::{AuthSession, Credentials, Password, RegisterError, Throttled, plausible_token},
    domain::{RegistrationMode, User, Username},
};

/// The exact words for every failed login, whether or not the name exists.
pub const INVALID_LOGIN: &str = "Invalid username or password.";

/// Form fields are optional here so a missing one is a clear 422, not a
/// generic deserialisation error.
#[derive(Debug, Deserialize)]
pub struct AccountForm {
    username: Option<String>,
    password: Option<String>,
    next: Option<String>,
    /// Registration only: the token of the invite link it came from.
    invite: Option<String>,
}

impl AccountForm {
    fn fields(self) -> Option<(String, String, Option<String>)> {
        Some((self.username?, self.password?, self.next))
    }
}

/// The words for a banned user's login (right password or not, no session).
pub const SUSPENDED: &str = "This account is suspended.";

fn user_agent(headers: &HeaderMap) -> &str {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("")
}

const MISSING_FIELDS: &str = "Enter both a username and a password.";

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    mut auth: AuthSession,
    form: Result<Form<AccountForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    let Some((username, password, next)) = form.fields() else {
        return login_failed(&state, StatusCode::UNPROCESSABLE_ENTITY, MISSING_FIELDS, String::new(), None)
            .await;
    };
    // Both throttles answer before any hashing.
    let throttled = match state.throttles.attempt(client).await? {
        Err(throttled) => Some(throttled),
        Ok(()) => state.throttles.check_failures(&username, client).await?.err(),
    };
    if let Some(throttled) = throttled {
        tracing::info!(?throttled, "login throttled");
        metrics::counter!(crate::metrics::LOGINS, "outcome" => "throttled").increment(1);
        let page =
            login_failed(&state, StatusCode::TOO_MANY_REQUESTS, &throttled_words(throttled), username, next)
                .await?;
        return Ok(with_retry_after(page, throttled));
    }
    let creds = Credentials { username: username.clone(), password: Password::for_login(password) };
    let Some(user) = auth.authenticate(creds).await? else {
        tracing::info!("login refused");
        metrics::counter!(crate::metrics::LOGINS, "outcome" => "refused").increment(1);
        state.throttles.failed(&username, client).await?;
        return login_failed(&state, StatusCode::UNAUTHORIZED, INVALID_LOGIN, username, next).await;
    };
    if user.is_banned() {
        tracing::info!(user.id = user.id, "login of a banned user refused");
        metrics::counter!(crate::metrics::LOGINS, "outcome" => "banned").increment(1);
        return login_failed(&state, StatusCode::FORBIDDEN, SUSPENDED, username, next).await;
    }
    state.throttles.succeeded(&username, client).await?;
    log_in(&state, &mut auth, &user, &headers).await?;
    tracing::info!(user.id = user.id, "logged in");
    metrics::counter!(crate::metrics::LOGINS, "outcome" => "ok").increment(1);
    let target = local_path(next.as_deref()).unwrap_or("/profile");
    Ok(Redirect::to(target).into_response())
}

/// Logs `user` in on this session, the one way every login does it (a
/// password, a registration, a provider): a new session id, even over an
/// existing login, so an id planted or seen before login is worthless after
/// it; the login's clocks started and its listing written.
pub(super) async fn log_in(
    state: &AppState,
    auth: &mut AuthSession,
    user: &User,
    headers: &HeaderMap,
) -> Result<(), AppError> {
    auth.session.cycle_id().await?;
    auth.login(user).await?;
    state.session_policy.started(&auth.session, user.id, user_agent(headers)).await?;
    Ok(())
}

/// What a throttled person is told: which limit, and when to come back
/// (rounded up: never too early).
pub(super) fn throttled_words(throttled: Throttled) -> String {
    let secs = retry_secs(throttled);
    match throttled {
        Throttled::Failures(_) => {
            format!("Too many failed logins for this name. Try again in {secs} seconds.")
        }
        Throttled::Attempts(_) => {
            format!("Too many attempts from your network. Try again in {secs} seconds.")
        }
    }
}

/// Seconds until the throttle lets the next try through, rounded up.
pub(super) fn retry_secs(throttled: Throttled) -> u64 {
    throttled.wait().as_secs_f64().ceil().max(1.0) as u64
}

/// Every 429 says when to come back.
pub(super) fn with_retry_after(mut page: Response, throttled: Throttled) -> Response {
    page.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_secs(throttled)));
    page
}

async fn login_failed(
    state: &AppState,
    status: StatusCode,
    message: &str,
    username: String,
    next: Option<String>,
) -> Result<Response, AppError> {
    let page = HomePage {
        login_error: Some(message.to_owned()),
        login_username: username,
        ..home_page(state, None, next.as_deref().unwrap_or_default(), "").await?
    };
    Ok(render(status, &page))
}

pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    mut auth: AuthSession,
    form: Result<Form<AccountForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    let invite = form.invite.clone().filter(|token| !token.is_empty());
    let Some((username, password, _)) = form.fields() else {
        return register_failed(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            MISSING_FIELDS,
            String::new(),
            invite,
        )
        .await;
    };
    if let Err(throttled) = state.throttles.attempt(client).await? {
        tracing::info!("registration throttled");
        metrics::counter!(crate::metrics::REGISTRATIONS, "outcome" => "throttled").increment(1);
        let page = register_failed(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &throttled_words(throttled),
            username,
            invite,
        )
        .await?;
        return Ok(with_retry_after(page, throttled));
    }
    // Refused before any hashing when the mode says no (the transaction
    // that creates the account checks again).
    let refused = match (state.store.registration_mode(state.registration).await?, invite.as_deref()) {
        (RegistrationMode::Closed, _) => Some(RegisterError::Closed),
        (RegistrationMode::Invite, None) => Some(RegisterError::InviteNeeded),
        (RegistrationMode::Invite, Some(token)) if !plausible_token(token) => {
            Some(RegisterError::InviteInvalid)
        }
        _ => None,
    };
    if let Some(refused) = refused {
        metrics::counter!(crate::metrics::REGISTRATIONS, "outcome" => "refused").increment(1);
        return register_failed(&state, StatusCode::FORBIDDEN, &refused.to_string(), username, invite).await;
    }
    // The name first: the password rules look at it.
    let checked = Username::parse(&username).map_err(|e| e.to_string()).and_then(|name| {
        let password = Password::new(&password, &name).map_err(|e| e.to_string())?;
        Ok((name, password))
    });
    let (name, password) = match checked {
        Ok(checked) => checked,
        Err(why) => {
            return register_failed(&state, StatusCode::UNPROCESSABLE_ENTITY, &why, username, invite).await;
        }
    };
    let user = match state.accounts.register(&name, &password, state.registration, invite.as_deref()).await {
        Ok(user) => user,
        Err(RegisterError::Failed(e)) => return Err(e.into()),
        Err(refused) => {
            let status = match refused {
                RegisterError::Taken => StatusCode::CONFLICT,
                _ => StatusCode::FORBIDDEN,
            };
            return register_failed(&state, status, &refused.to_string(), username, invite).await;
        }
    };
    tracing::info!(user.id = user.id, admin = user.is_admin(), "registered");
    metrics::counter!(crate::metrics::REGISTRATIONS, "outcome" => "ok").increment(1);
    log_in(&state, &mut auth, &user, &headers).await?;
    Ok(Redirect::to("/profile").into_response())
}

async fn register_failed(
    state: &AppState,
    status: StatusCode,
    message: &str,
    username: String,
    invite: Option<String>,
) -> Result<Response, AppError> {
    let page = HomePage {
        register_error: Some(message.to_owned()),
        register_username: username,
        ..home_page(state, None, "", invite.as_deref().unwrap_or_default()).await?
    };
    Ok(render(status, &page))
}

/// Ends the session: the row is deleted from the store, which carries the
/// ending out (every live socket opened with it closes with 4401, on every
/// node). A GET, so the page's `a#logout` link works, yet it changes state:
/// another site's link or image (or any HEAD, which browsers may send on
/// their own) ends nothing.
pub async fn logout(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    mut auth: AuthSession,
) -> Result<Response, AppError> {
    if method == Method::HEAD || !state.origin.is_same_origin(&headers) {
        return Err(AppError::CrossOrigin);
    }
    auth.logout().await?;
    Ok(Redirect::to("/").into_response())
}
