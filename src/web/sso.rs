//! Sign-in through GitHub or an OpenID Connect provider (`crate::sso`): the
//! route that sends a browser to the provider (`GET /auth/PROVIDER`) and the
//! one it comes back to (`GET /auth/PROVIDER/callback`).
//!
//! Between the two, the sign-in waits in the database (`store::sso_pending`),
//! under a hash of its `state` and bound to a hash of the browser session's
//! id: the callback may reach another node than the one it began on, and a
//! node's session cache may hold an older copy of the session for a few
//! seconds, so the session itself is no place for it. The callback takes it
//! out before anything else (it works once, whatever follows), and only a
//! callback in the same browser session gets it: any other is a forgery or
//! a replay, answered with 403 and nobody logged in.
//!
//! The callback then logs in exactly as a password does (`auth::log_in`);
//! or, when the sign-in began in a logged-in session, links the identity to
//! that account instead. Every failure but a forged callback goes back to
//! the home page with a message in our words ([`Problem`]), carried in the
//! address so any node can show it.

use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use url::Url;

use super::{
    AppState,
    auth::{SUSPENDED, log_in, throttled_words, with_retry_after},
    client::ClientAddr,
    error::AppError,
    next::local_path,
    pages::render,
    site::home_page,
};
use crate::{
    accounts::{AuthSession, ProviderSignIn, RegisterError, plausible_token, token_hash},
    domain::{PendingSignIn, Provider},
    sso::{Callback, Pending, Sso, SsoError},
    store::{Actor, IdentityChangeError},
};

/// The configured providers and where they send browsers back to:
/// `PUBLIC_URL` + `/auth/github/callback` and `/auth/oidc/callback`, exactly
/// as registered with each provider.
#[derive(Clone, Debug)]
pub struct SignInRoutes {
    sso: Sso,
    github_callback: Url,
    oidc_callback: Url,
}

impl SignInRoutes {
    pub fn new(sso: Sso, public_url: &Url) -> Self {
        let callback = |provider: Provider| {
            // A path joined to an http(s) URL is always a URL.
            public_url.join(&format!("/auth/{provider}/callback")).unwrap_or_else(|_| public_url.clone())
        };
        Self { github_callback: callback(Provider::GitHub), oidc_callback: callback(Provider::Oidc), sso }
    }

    pub fn sso(&self) -> &Sso {
        &self.sso
    }

    fn callback(&self, provider: Provider) -> &Url {
        match provider {
            Provider::GitHub => &self.github_callback,
            Provider::Oidc => &self.oidc_callback,
        }
    }

    /// The provider a route names, if it is configured; else the route is not there.
    fn provider(&self, name: &str) -> Result<Provider, AppError> {
        name.parse().ok().filter(|p| self.sso.enabled(*p)).ok_or(AppError::NotFound)
    }

    /// What people call the provider ("GitHub", `OIDC_NAME`).
    pub fn label(&self, provider: Provider) -> &str {
        self.sso.label(provider).unwrap_or(match provider {
            Provider::GitHub => "GitHub",
            Provider::Oidc => "your sign-in provider",
        })
    }

    /// The configured providers, in the order their buttons show.
    pub fn providers(&self) -> impl Iterator<Item = Provider> + '_ {
        Provider::ALL.into_iter().filter(|p| self.sso.enabled(*p))
    }

    /// A button's link: the route, with the page's `next` (a local path) or
    /// its invite.
    pub fn href(provider: Provider, next: &str, invite: &str) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if !next.is_empty() {
            query.append_pair("next", next);
        }
        if !invite.is_empty() {
            query.append_pair("invite", invite);
        }
        let query = query.finish();
        if query.is_empty() { format!("/auth/{provider}") } else { format!("/auth/{provider}?{query}") }
    }
}

/// The session key that marks a browser as on its way through a provider:
/// it makes sure the session is stored (and so has an id to bind the
/// sign-in to) before the browser leaves.
const SIGN_IN_STARTED: &str = "lobby.sign_in_started";

/// What a forged, replayed or foreign callback is told (with 403).
const FORGED: &str = "That sign-in did not start in this browser, or was finished already, so nobody was logged in. Start again from the login page.";

#[derive(Debug, Deserialize)]
pub struct BeginQuery {
    next: Option<String>,
    invite: Option<String>,
}

/// `GET /auth/PROVIDER`: sends the browser to the provider. Logged in, the
/// sign-in will link the provider to the account; else it logs in (or
/// registers, with the invite it carries).
pub async fn begin(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Path(provider): Path<String>,
    auth: AuthSession,
    query: Result<Query<BeginQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let provider = state.sign_in.provider(&provider)?;
    let Query(query) = query?;
    let next = local_path(query.next.as_deref()).map(str::to_owned);
    if let Err(throttled) = state.throttles.attempt(client).await? {
        tracing::info!(%provider, "sign-in throttled");
        return throttled_page(&state, throttled, next.as_deref()).await;
    }
    let link_user = auth.user.as_ref().map(|u| u.id);
    // Linking changes the account: only from our own pages (or a typed
    // address), as for every change.
    if link_user.is_some() && !state.origin.is_same_origin(&headers) {
        return Err(AppError::CrossOrigin);
    }
    let invite_hash =
        query.invite.filter(|token| link_user.is_none() && plausible_token(token)).map(|t| token_hash(&t));
    let (url, pending) = match state.sign_in.sso.begin(provider, state.sign_in.callback(provider)).await {
        Ok(begun) => begun,
        Err(e) => return Ok(failed(Problem::Sso(e), provider, next.as_deref())),
    };
    auth.session.insert(SIGN_IN_STARTED, OffsetDateTime::now_utc().unix_timestamp()).await?;
    auth.session.save().await?;
    let Some(session) = auth.session.id() else {
        return Err(AppError::Unavailable("the session was saved without an id".into()));
    };
    let kept = PendingSignIn {
        state_hash: pending.state_hash(),
        session_hash: crate::token::hash(&session.to_string()),
        provider,
        login: pending.seal(),
        next,
        invite_hash,
        link_user,
        expires_at: pending.expires_at().unix_timestamp(),
    };
    state.store.save_pending_sign_in(&kept).await?;
    tracing::info!(%provider, linking = link_user.is_some(), "sent to the provider");
    Ok(Redirect::to(url.as_str()).into_response())
}

/// `GET /auth/PROVIDER/callback`: the provider sends the browser back.
pub async fn callback(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Path(provider): Path<String>,
    mut auth: AuthSession,
    query: Result<Query<Callback>, QueryRejection>,
) -> Result<Response, AppError> {
    let provider = state.sign_in.provider(&provider)?;
    // A callback is an attempt to authenticate, like a login form.
    if let Err(throttled) = state.throttles.attempt(client).await? {
        tracing::info!(%provider, "sign-in callback throttled");
        return throttled_page(&state, throttled, None).await;
    }
    let (pending, login, callback) = match take_pending(&state, &auth, provider, query).await? {
        Some(taken) => taken,
        None => {
            tracing::info!(%provider, "a callback that is not this session's refused");
            counted(provider, "forged");
            return Err(AppError::Forbidden(FORGED));
        }
    };
    let next = pending.next.as_deref();
    if OffsetDateTime::now_utc().unix_timestamp() > pending.expires_at {
        return Ok(failed(Problem::Sso(SsoError::Expired), provider, next));
    }
    // The sign-in is spent already: whatever the provider says now, it is
    // not asked again with this state.
    let identity = match state.sign_in.sso.finish(provider, login, &callback).await {
        Ok(identity) => identity,
        Err(e) if e.is_forged() => return Err(AppError::Forbidden(FORGED)),
        Err(e) => {
            counted(provider, e.kind());
            return Ok(failed(Problem::Sso(e), provider, next));
        }
    };
    let (key, profile) = (identity.key(), identity.profile());

    if let Some(link_user) = pending.link_user {
        // Linking: the session that asked must still be that user's.
        let (Some(user), Some(session)) = (auth.user.as_ref(), auth.session.id()) else {
            return Ok(failed(Problem::NotLoggedIn, provider, None));
        };
        if user.id != link_user {
            return Ok(failed(Problem::NotLoggedIn, provider, None));
        }
        match state.store.link_identity(&key, &profile, Actor::User { user: user.id, session }).await {
            Ok(()) => {}
            Err(IdentityChangeError::Store(e)) => return Err(e.into()),
            Err(refused) => return Ok(failed(Problem::refused_link(&refused), provider, None)),
        }
        tracing::info!(user.id = user.id, %provider, "identity linked");
        counted(provider, "linked");
        auth.session.remove::<i64>(SIGN_IN_STARTED).await?;
        return Ok(Redirect::to(&format!("/account?done=linked&provider={provider}")).into_response());
    }

    let signed_in = state
        .accounts
        .sign_in_with(
            &key,
            &profile,
            identity.username_hint.as_deref(),
            state.registration,
            pending.invite_hash.as_deref(),
        )
        .await;
    let (user, outcome) = match signed_in {
        Ok(ProviderSignIn::Returning(user)) => (user, "ok"),
        Ok(ProviderSignIn::Registered(user)) => (user, "registered"),
        Ok(ProviderSignIn::Suspended(user)) => {
            tracing::info!(user.id = user.id, %provider, "sign-in of a banned user refused");
            counted(provider, "banned");
            let page = super::pages::HomePage {
                sign_in_error: Some(SUSPENDED.to_owned()),
                ..home_page(&state, None, next.unwrap_or_default(), "").await?
            };
            return Ok(render(StatusCode::FORBIDDEN, &page));
        }
        Err(RegisterError::Failed(e)) => return Err(e.into()),
        Err(refused) => {
            tracing::info!(%provider, reason = %refused, "a new account through a provider refused");
            counted(provider, "refused");
            return Ok(failed(Problem::refused_registration(&refused), provider, next));
        }
    };
    log_in(&state, &mut auth, &user, &headers).await?;
    auth.session.remove::<i64>(SIGN_IN_STARTED).await?;
    tracing::info!(user.id = user.id, %provider, outcome, "logged in through a provider");
    counted(provider, outcome);
    let target = local_path(next).unwrap_or("/profile");
    Ok(Redirect::to(target).into_response())
}

/// Counts a sign-in through `provider` by how it ended.
fn counted(provider: Provider, outcome: &'static str) {
    metrics::counter!(crate::metrics::SSO_SIGN_INS, "provider" => provider.as_str(), "outcome" => outcome)
        .increment(1);
}

/// Takes out the sign-in the callback's state names, if it began in this
/// browser session with this provider: the sign-in, its login and the
/// callback. `None` is a forged, replayed or foreign callback.
async fn take_pending(
    state: &AppState,
    auth: &AuthSession,
    provider: Provider,
    query: Result<Query<Callback>, QueryRejection>,
) -> Result<Option<(PendingSignIn, Pending, Callback)>, AppError> {
    // A query that cannot be read has no state to go by.
    let Ok(Query(callback)) = query else { return Ok(None) };
    let Some(state_hash) = callback.state_hash() else { return Ok(None) };
    // Taken (deleted) first: a state is good for one callback, whoever sends it.
    let Some(pending) = state.store.take_pending_sign_in(&state_hash).await? else { return Ok(None) };
    let Some(session) = auth.session.id() else { return Ok(None) };
    let this_session = crate::token::hash(&session.to_string());
    let same_session: bool = this_session.as_bytes().ct_eq(pending.session_hash.as_bytes()).into();
    if !same_session || pending.provider != provider {
        return Ok(None);
    }
    let Ok(login) = Pending::unseal(&pending.login) else { return Ok(None) };
    Ok(Some((pending, login, callback)))
}

async fn throttled_page(
    state: &AppState,
    throttled: crate::accounts::Throttled,
    next: Option<&str>,
) -> Result<Response, AppError> {
    let page = super::pages::HomePage {
        sign_in_error: Some(throttled_words(throttled)),
        ..home_page(state, None, next.unwrap_or_default(), "").await?
    };
    Ok(with_retry_after(render(StatusCode::TOO_MANY_REQUESTS, &page), throttled))
}

/// A sign-in that did not happen: 303 to the home page, which says why
/// (the address carries it, so whichever node serves the page can), and
/// keeps where the login was to end.
fn failed(problem: Problem, provider: Provider, next: Option<&str>) -> Response {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("signin", problem.code()).append_pair("provider", provider.as_str());
    if let Some(next) = local_path(next) {
        query.append_pair("next", next);
    }
    Redirect::to(&format!("/?{}", query.finish())).into_response()
}

/// Why a sign-in through a provider did not happen, as the page it lands on
/// is told it (`?signin=CODE&provider=PROVIDER`) and says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The provider, or the exchange with it.
    Sso(SsoError),
    /// A new account was needed and registration is closed…
    Closed,
    /// …or by invitation, and the sign-in came with no invite…
    InviteNeeded,
    /// …or with one that cannot be used.
    InviteInvalid,
    /// No derived username was free.
    NoFreeName,
    /// Linking: the identity is another account's…
    LinkedElsewhere,
    /// …or already this one's…
    AlreadyYours,
    /// …or the account has one at that provider already…
    ProviderTaken,
    /// …or the session that asked was logged out meanwhile.
    NotLoggedIn,
}

impl Problem {
    fn refused_registration(e: &RegisterError) -> Self {
        match e {
            RegisterError::Closed => Problem::Closed,
            RegisterError::InviteNeeded => Problem::InviteNeeded,
            RegisterError::InviteInvalid => Problem::InviteInvalid,
            // Names are made unique by the server: only running out is left.
            RegisterError::Taken | RegisterError::NoFreeName | RegisterError::Failed(_) => {
                Problem::NoFreeName
            }
        }
    }

    fn refused_link(e: &IdentityChangeError) -> Self {
        match e {
            IdentityChangeError::LinkedElsewhere => Problem::LinkedElsewhere,
            IdentityChangeError::AlreadyYours => Problem::AlreadyYours,
            IdentityChangeError::ProviderTaken => Problem::ProviderTaken,
            _ => Problem::NotLoggedIn,
        }
    }

    const OWN: [(Problem, &'static str); 8] = [
        (Problem::Closed, "closed"),
        (Problem::InviteNeeded, "invite_needed"),
        (Problem::InviteInvalid, "invite_invalid"),
        (Problem::NoFreeName, "no_free_name"),
        (Problem::LinkedElsewhere, "linked_elsewhere"),
        (Problem::AlreadyYours, "already_yours"),
        (Problem::ProviderTaken, "provider_taken"),
        (Problem::NotLoggedIn, "not_logged_in"),
    ];

    pub fn code(self) -> &'static str {
        match self {
            Problem::Sso(e) => e.kind(),
            own => Self::OWN.iter().find(|(p, _)| *p == own).map_or("failed", |(_, code)| code),
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        SsoError::from_kind(code)
            .map(Problem::Sso)
            .or_else(|| Self::OWN.iter().find(|(_, c)| *c == code).map(|(p, _)| *p))
    }

    /// What the person is told, naming the provider by `label`.
    pub fn message(self, label: &str) -> String {
        match self {
            Problem::Sso(e) => e.message(label),
            Problem::Closed => format!(
                "No account here is connected to that {label} account, and registration is closed, so none was made. Ask an admin of this Lobby if you should have one."
            ),
            Problem::InviteNeeded => format!(
                "No account here is connected to that {label} account, and registration is by invitation only: open the invite link you were given and sign in from there."
            ),
            Problem::InviteInvalid => {
                "This invite link is not valid: it was used, revoked or has expired. Ask for a new one."
                    .to_owned()
            }
            Problem::NoFreeName => RegisterError::NoFreeName.to_string(),
            Problem::LinkedElsewhere => format!(
                "That {label} account is connected to another Lobby account, so it cannot be connected to yours."
            ),
            Problem::AlreadyYours => format!("That {label} account is already connected to yours."),
            Problem::ProviderTaken => format!(
                "Your account is connected to another {label} account already. Disconnect that one first."
            ),
            Problem::NotLoggedIn => format!(
                "You were logged out before {label} answered, so nothing was connected. Log in and try again."
            ),
        }
    }
}

/// The message for a page's `?signin=CODE&provider=PROVIDER`, if they are ours.
pub fn problem_message(routes: &SignInRoutes, code: Option<&str>, provider: Option<&str>) -> Option<String> {
    let problem = Problem::from_code(code?)?;
    let provider: Provider = provider?.parse().ok()?;
    Some(problem.message(routes.label(provider)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_reads_back_from_its_code() {
        let all = SsoError::ALL.into_iter().map(Problem::Sso).chain(Problem::OWN.iter().map(|(p, _)| *p));
        for problem in all {
            assert_eq!(Problem::from_code(problem.code()), Some(problem), "{problem:?}");
            assert!(!problem.message("GitHub").is_empty());
        }
        assert_eq!(Problem::from_code("<script>"), None);
    }

    #[test]
    fn buttons_carry_next_and_invites_encoded() {
        assert_eq!(SignInRoutes::href(Provider::GitHub, "", ""), "/auth/github");
        assert_eq!(
            SignInRoutes::href(Provider::Oidc, "/chat?a=1&b=2", ""),
            "/auth/oidc?next=%2Fchat%3Fa%3D1%26b%3D2"
        );
        assert_eq!(SignInRoutes::href(Provider::GitHub, "", "ab12"), "/auth/github?invite=ab12");
    }
}
