//! Sign-in through another site: GitHub (OAuth 2.0) or one OpenID Connect
//! provider (a school's or company's Google, Microsoft, Keycloak,
//! Authentik…).
//!
//! Two calls, one each side of the browser's trip to the provider:
//!
//! - [`Sso::begin`] makes the authorization URL to send the browser to, and
//!   the [`Pending`] login (state, PKCE verifier, nonce, when it began) that
//!   the caller keeps on the server, bound to that browser, under the hash
//!   of its state ([`Pending::state_hash`], [`Pending::seal`]);
//! - [`Sso::finish`] takes that `Pending` back with the provider's callback
//!   query and returns who the provider says the user is
//!   ([`ProviderIdentity`]), or an [`SsoError`] in words a user can act on.
//!
//! What `finish` checks, in this order: the callback is for the provider the
//! login began with and carries its `state` (compared in constant time: a
//! forged or replayed callback stops here); the login began less than
//! [`STATE_TTL`] ago; the provider did not answer with an error
//! (`access_denied`…); the code is exchanged at the token endpoint with the
//! PKCE verifier and the client secret; then GitHub's user is read from its
//! API, and an OpenID Connect ID token is verified (signature by the
//! provider's published keys, `iss`, `aud`, `exp`, `nonce`).
//!
//! Every call to a provider, and each of `begin` and `finish` as a whole, is
//! bounded by [`PROVIDER_TIMEOUT`]. The provider's tokens live only inside
//! `finish`: they are neither returned, kept nor logged.
//!
//! This module knows nothing of accounts, sessions or routes (it imports
//! only `config`, `token` and the domain's types): it turns a callback into
//! an identity, and the layers above decide what that identity may do.

mod discovery;
mod error;
mod github;
mod http;
mod oidc;
mod pending;

use std::{fmt, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

pub use error::{SsoConfigError, SsoError};
pub use pending::{Callback, Pending};

pub use crate::domain::Provider;
use crate::{
    config::SignIn,
    domain::{IdentityKey, IdentityProfile},
};

/// How long a login may take between `begin` and `finish`.
pub const STATE_TTL: Duration = Duration::from_secs(10 * 60);

/// The longest Lobby waits on a provider: for any one HTTP call, and for
/// all of `begin` or `finish` together (discovery, token, user info, keys).
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Who the provider says the user is. `(provider, issuer, subject)` is the
/// identity; everything else is what the provider tells about them today,
/// to fill a new account's profile: never a key to find an account by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderIdentity {
    pub provider: Provider,
    /// Whose subject it is: `GITHUB_URL`, or the OIDC issuer. A subject is
    /// unique only within its issuer, so an identity stored under one
    /// issuer must not match a login from another (after `OIDC_ISSUER` or
    /// `GITHUB_URL` is changed to another provider).
    pub issuer: String,
    /// The provider's stable id for the user: GitHub's numeric user id, the
    /// OpenID Connect `sub`.
    pub subject: String,
    /// A name to derive a username from: the GitHub login, else the OIDC
    /// `preferred_username`, else the local part of the email. Not checked
    /// against our username rules.
    pub username_hint: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Whether the provider says it checked the email (GitHub: verified;
    /// OIDC: `email_verified`).
    pub email_verified: bool,
    /// The user's picture (GitHub's `avatar_url`, the OIDC `picture`).
    pub avatar_url: Option<String>,
}

impl ProviderIdentity {
    /// The identity, as accounts are found by it.
    pub fn key(&self) -> IdentityKey {
        IdentityKey { provider: self.provider, issuer: self.issuer.clone(), subject: self.subject.clone() }
    }

    /// What the provider says about the person, as an account keeps it.
    pub fn profile(&self) -> IdentityProfile {
        IdentityProfile::new(self.display_name.as_deref(), self.email.as_deref(), self.avatar_url.as_deref())
    }
}

/// The configured providers. Cheap to clone; built once at start without
/// touching the network (an OpenID Connect provider is discovered at its
/// first use, and again after a failure, so a provider that is down when
/// Lobby starts costs nothing but its own button until it is back).
#[derive(Clone)]
pub struct Sso {
    inner: Arc<Inner>,
}

struct Inner {
    http: http::Http,
    github: Option<github::GitHub>,
    oidc: Option<oidc::Oidc>,
}

impl Sso {
    /// The providers `settings` turn on. A half-set provider (an id without
    /// its secret, or the reverse) or a malformed URL is an error, so a typo
    /// stops the server at start instead of hiding a button.
    pub fn from_config(settings: &SignIn) -> Result<Self, SsoConfigError> {
        let github = github::GitHub::from_settings(settings)?;
        let oidc = oidc::Oidc::from_settings(settings)?;
        Ok(Self { inner: Arc::new(Inner { http: http::Http::new()?, github, oidc }) })
    }

    pub fn enabled(&self, provider: Provider) -> bool {
        match provider {
            Provider::GitHub => self.inner.github.is_some(),
            Provider::Oidc => self.inner.oidc.is_some(),
        }
    }

    /// The provider's name for people ("GitHub", `OIDC_NAME`), when it is on.
    pub fn label(&self, provider: Provider) -> Option<&str> {
        match provider {
            Provider::GitHub => self.inner.github.as_ref().map(|_| "GitHub"),
            Provider::Oidc => self.inner.oidc.as_ref().map(|o| o.label()),
        }
    }

    /// Whose subjects this server's logins through `provider` carry
    /// (`GITHUB_URL`, `OIDC_ISSUER`), when it is on: an account's identity
    /// under another issuer is from an earlier setting.
    pub fn issuer(&self, provider: Provider) -> Option<&str> {
        match provider {
            Provider::GitHub => self.inner.github.as_ref().map(|g| g.issuer()),
            Provider::Oidc => self.inner.oidc.as_ref().map(|o| o.issuer()),
        }
    }

    /// Starts a login: the URL to send the browser to, and the [`Pending`]
    /// login to keep until the callback. `redirect_uri` is
    /// the callback's full URL, exactly as registered with the provider.
    #[tracing::instrument(skip_all, fields(%provider))]
    pub async fn begin(&self, provider: Provider, redirect_uri: &Url) -> Result<(Url, Pending), SsoError> {
        let now = OffsetDateTime::now_utc();
        let begun = async {
            match provider {
                Provider::GitHub => Ok(self.github()?.begin(redirect_uri, now)),
                Provider::Oidc => self.oidc()?.begin(&self.inner.http, redirect_uri, now).await,
            }
        };
        tokio::time::timeout(PROVIDER_TIMEOUT, begun)
            .await
            .unwrap_or(Err(SsoError::TimedOut))
            .inspect_err(|e| e.log(provider))
    }

    /// Ends a login: checks the callback against `pending` and asks the
    /// provider who the user is. `pending` is consumed: a state works once.
    pub async fn finish(
        &self,
        provider: Provider,
        pending: Pending,
        callback: &Callback,
    ) -> Result<ProviderIdentity, SsoError> {
        self.finish_at(provider, pending, callback, OffsetDateTime::now_utc()).await
    }

    /// [`finish`](Self::finish), as if the callback came at `now` (which
    /// decides whether the login has expired).
    #[tracing::instrument(skip_all, fields(%provider))]
    pub async fn finish_at(
        &self,
        provider: Provider,
        pending: Pending,
        callback: &Callback,
        now: OffsetDateTime,
    ) -> Result<ProviderIdentity, SsoError> {
        let finished = async {
            let code = pending.check(provider, callback, now)?;
            match provider {
                Provider::GitHub => self.github()?.finish(&self.inner.http, pending, code).await,
                Provider::Oidc => self.oidc()?.finish(&self.inner.http, pending, callback, code).await,
            }
        };
        tokio::time::timeout(PROVIDER_TIMEOUT, finished)
            .await
            .unwrap_or(Err(SsoError::TimedOut))
            .inspect_err(|e| e.log(provider))
    }

    fn github(&self) -> Result<&github::GitHub, SsoError> {
        self.inner.github.as_ref().ok_or(SsoError::NotConfigured)
    }

    fn oidc(&self) -> Result<&oidc::Oidc, SsoError> {
        self.inner.oidc.as_ref().ok_or(SsoError::NotConfigured)
    }
}

impl fmt::Debug for Sso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sso")
            .field("github", &self.inner.github.is_some())
            .field("oidc", &self.inner.oidc.as_ref().map(|o| o.label()))
            .finish()
    }
}
