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
};
use crate::accounts::{AuthSession, Credentials, Password, RegisterError, Throttled, Username};

/// The exact words for every failed login, whether or not the name exists.
pub const INVALID_LOGIN: &str = "Invalid username or password.";

/// Form fields are optional here so a missing one is a clear 422, not a
/// generic deserialisation error.
#[derive(Debug, Deserialize)]
pub struct AccountForm {
    username: Option<String>,
    password: Option<String>,
    next: Option<String>,
}

impl AccountForm {
    fn fields(self) -> Option<(String, String, Option<String>)> {
        Some((self.username?, self.password?, self.next))
    }
}

const MISSING_FIELDS: &str = "Enter both a username and a password.";

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    mut auth: AuthSession,
    form: Result<Form<AccountForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    let Some((username, password, next)) = form.fields() else {
        return Ok(login_failed(StatusCode::UNPROCESSABLE_ENTITY, MISSING_FIELDS, String::new(), None));
    };
    // Both throttles answer before any hashing.
    let throttled = match state.throttles.attempt(client).await? {
        Err(throttled) => Some(throttled),
        Ok(()) => state.throttles.check_failures(&username, client).await?.err(),
    };
    if let Some(throttled) = throttled {
        tracing::info!(?throttled, "login throttled");
        metrics::counter!(crate::metrics::LOGINS, "outcome" => "throttled").increment(1);
        return Ok(with_retry_after(
            login_failed(StatusCode::TOO_MANY_REQUESTS, &throttled_words(throttled), username, next),
            throttled,
        ));
    }
    let creds = Credentials { username: username.clone(), password: Password::for_login(password) };
    let Some(user) = auth.authenticate(creds).await? else {
        tracing::info!("login refused");
        metrics::counter!(crate::metrics::LOGINS, "outcome" => "refused").increment(1);
        state.throttles.failed(&username, client).await?;
        return Ok(login_failed(StatusCode::UNAUTHORIZED, INVALID_LOGIN, username, next));
    };
    state.throttles.succeeded(&username, client).await?;
    // A new session id at every login, even over an existing login, so an
    // id planted or seen before login is worthless after it.
    auth.session.cycle_id().await?;
    auth.login(&user).await?;
    super::activity::started(&auth.session, &state.session_policy).await?;
    tracing::info!(user.id = user.id, "logged in");
    metrics::counter!(crate::metrics::LOGINS, "outcome" => "ok").increment(1);
    let target = local_path(next.as_deref()).unwrap_or("/profile");
    Ok(Redirect::to(target).into_response())
}

/// What a throttled person is told: which limit, and when to come back
/// (rounded up: never too early).
fn throttled_words(throttled: Throttled) -> String {
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

fn retry_secs(throttled: Throttled) -> u64 {
    throttled.wait().as_secs_f64().ceil().max(1.0) as u64
}

fn with_retry_after(mut page: Response, throttled: Throttled) -> Response {
    page.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_secs(throttled)));
    page
}

fn login_failed(status: StatusCode, message: &str, username: String, next: Option<String>) -> Response {
    let page = HomePage {
        login_error: Some(message.to_owned()),
        login_username: username,
        next: local_path(next.as_deref()).unwrap_or_default().to_owned(),
        ..HomePage::default()
    };
    render(status, &page)
}

pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    mut auth: AuthSession,
    form: Result<Form<AccountForm>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    let Some((username, password, _)) = form.fields() else {
        return Ok(register_failed(StatusCode::UNPROCESSABLE_ENTITY, MISSING_FIELDS, String::new()));
    };
    if let Err(throttled) = state.throttles.attempt(client).await? {
        tracing::info!("registration throttled");
        metrics::counter!(crate::metrics::REGISTRATIONS, "outcome" => "throttled").increment(1);
        return Ok(with_retry_after(
            register_failed(StatusCode::TOO_MANY_REQUESTS, &throttled_words(throttled), username),
            throttled,
        ));
    }
    let name = match Username::parse(&username) {
        Ok(name) => name,
        Err(e) => return Ok(register_failed(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string(), username)),
    };
    let password = match Password::new(&password, &name) {
        Ok(p) => p,
        Err(e) => return Ok(register_failed(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string(), username)),
    };
    let user = match state.accounts.register(&name, &password).await {
        Ok(user) => user,
        Err(RegisterError::Taken) => {
            let message = RegisterError::Taken.to_string();
            return Ok(register_failed(StatusCode::CONFLICT, &message, username));
        }
        Err(RegisterError::Failed(e)) => return Err(e.into()),
    };
    tracing::info!(user.id = user.id, "registered");
    metrics::counter!(crate::metrics::REGISTRATIONS, "outcome" => "ok").increment(1);
    auth.session.cycle_id().await?;
    auth.login(&user).await?;
    super::activity::started(&auth.session, &state.session_policy).await?;
    Ok(Redirect::to("/profile").into_response())
}

fn register_failed(status: StatusCode, message: &str, username: String) -> Response {
    let page = HomePage {
        register_error: Some(message.to_owned()),
        register_username: username,
        ..HomePage::default()
    };
    render(status, &page)
}

/// Ends the session: the row is deleted from the store, and every live
/// socket opened with it is closed (4401). A GET, so the page's `a#logout`
/// link works, yet it changes state: another site's link or image (or any
/// HEAD, which browsers may send on their own) ends nothing.
pub async fn logout(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    mut auth: AuthSession,
) -> Result<Response, AppError> {
    if method == Method::HEAD || !state.origin.is_same_origin(&headers) {
        return Err(AppError::CrossOrigin);
    }
    let session = auth.session.id();
    auth.logout().await?;
    if let Some(session) = session {
        state.realtime.revocation.end_here(&session, crate::realtime::protocol::close::SESSION_ENDED);
    }
    Ok(Redirect::to("/").into_response())
}
