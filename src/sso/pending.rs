//! A login between `begin` and `finish`: what the server keeps while the
//! user is at the provider, and the callback that ends it.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::{Provider, STATE_TTL, SsoError};

/// One login in progress. It holds secrets (the PKCE verifier above all), so
/// it stays on the server (sealed with [`Pending::seal`] and kept under the
/// hash of its state, [`Pending::state_hash`]), never in a cookie or a URL,
/// and its `Debug` shows none of them.
#[derive(Clone, Serialize, Deserialize)]
pub struct Pending {
    pub(super) provider: Provider,
    /// The `state` sent to the provider: random, single-use, and bound to
    /// this browser by living in its session.
    pub(super) state: String,
    pub(super) pkce_verifier: String,
    /// OpenID Connect only: the `nonce` the ID token must carry.
    pub(super) nonce: Option<String>,
    /// The redirect URI sent at `begin`; the token request must repeat it
    /// exactly.
    pub(super) redirect_uri: String,
    #[serde(with = "time::serde::timestamp")]
    pub(super) created_at: OffsetDateTime,
}

impl Pending {
    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        now - self.created_at > STATE_TTL
    }

    /// When it stops being good: [`STATE_TTL`] after it began.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.created_at + STATE_TTL
    }

    /// The key to keep it under: a hash of its state, which the callback
    /// brings back ([`Callback::state_hash`]). The state itself is not kept
    /// beside it, so the store of logins in progress gives nobody a
    /// callback to forge.
    pub fn state_hash(&self) -> String {
        crate::token::hash(&self.state)
    }

    /// The login as text to keep until the callback (its secrets included).
    pub fn seal(&self) -> String {
        // A struct of strings and a timestamp always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A login kept with [`seal`](Self::seal); anything else is no login
    /// this server began.
    pub fn unseal(sealed: &str) -> Result<Pending, SsoError> {
        serde_json::from_str(sealed).map_err(|_| SsoError::BadState)
    }

    /// Whether `state` (from a callback) is this login's, compared in
    /// constant time.
    fn has_state(&self, state: &str) -> bool {
        bool::from(self.state.as_bytes().ct_eq(state.as_bytes()))
    }

    /// The checks that need no provider: right provider, right state, not
    /// expired, not refused at the provider. Returns the code to exchange.
    pub(super) fn check<'c>(
        &self,
        provider: Provider,
        callback: &'c Callback,
        now: OffsetDateTime,
    ) -> Result<&'c str, SsoError> {
        let state_matches = callback.state.as_deref().is_some_and(|s| self.has_state(s));
        if self.provider != provider || !state_matches {
            return Err(SsoError::BadState);
        }
        if self.is_expired_at(now) {
            return Err(SsoError::Expired);
        }
        if let Some(error) = &callback.error {
            tracing::info!(%provider, error = %error.escape_debug(), "the provider answered the authorization with an error");
            return Err(match error.as_str() {
                "access_denied" => SsoError::Denied,
                "temporarily_unavailable" | "server_error" => SsoError::Unavailable,
                _ => SsoError::Refused,
            });
        }
        callback.code.as_deref().filter(|c| !c.is_empty()).ok_or(SsoError::BadCode)
    }
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("provider", &self.provider)
            .field("redirect_uri", &self.redirect_uri)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// The query of a provider's redirect back to Lobby
/// (`/auth/…/callback?code=…&state=…`, or `?error=…&state=…`). Unknown
/// parameters, `error_description` among them, are ignored: the provider's
/// words are not shown to users.
#[derive(Clone, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    /// The issuer, when the provider says who it is (RFC 9207): it must be
    /// the one the login began with.
    pub iss: Option<String>,
}

impl Callback {
    /// The hash of the callback's state, to find its login by
    /// ([`Pending::state_hash`]); none without a state.
    pub fn state_hash(&self) -> Option<String> {
        self.state.as_deref().filter(|s| !s.is_empty()).map(crate::token::hash)
    }
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback")
            .field("code", &self.code.as_ref().map(|_| "***"))
            .field("state", &self.state.as_ref().map(|_| "***"))
            .field("error", &self.error)
            .field("iss", &self.iss)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(provider: Provider, state: &str, created_at: OffsetDateTime) -> Pending {
        Pending {
            provider,
            state: state.to_owned(),
            pkce_verifier: "verifier-secret".to_owned(),
            nonce: Some("nonce-secret".to_owned()),
            redirect_uri: "http://127.0.0.1/auth/oidc/callback".to_owned(),
            created_at,
        }
    }

    fn callback(state: &str) -> Callback {
        Callback { code: Some("code-secret".into()), state: Some(state.into()), ..Callback::default() }
    }

    #[test]
    fn checks_before_the_provider_is_asked() {
        let now = OffsetDateTime::now_utc();
        let p = pending(Provider::Oidc, "s", now);
        assert_eq!(p.check(Provider::Oidc, &callback("s"), now), Ok("code-secret"));
        assert_eq!(p.check(Provider::GitHub, &callback("s"), now), Err(SsoError::BadState));
        assert_eq!(p.check(Provider::Oidc, &callback("t"), now), Err(SsoError::BadState));
        assert_eq!(p.check(Provider::Oidc, &Callback::default(), now), Err(SsoError::BadState));
        let late = now + STATE_TTL + time::Duration::seconds(1);
        assert_eq!(p.check(Provider::Oidc, &callback("s"), late), Err(SsoError::Expired));
        let denied =
            Callback { error: Some("access_denied".into()), state: Some("s".into()), ..Callback::default() };
        assert_eq!(p.check(Provider::Oidc, &denied, now), Err(SsoError::Denied));
        let no_code = Callback { state: Some("s".into()), ..Callback::default() };
        assert_eq!(p.check(Provider::Oidc, &no_code, now), Err(SsoError::BadCode));
    }

    #[test]
    fn secrets_stay_out_of_debug_and_survive_being_kept() {
        let now = OffsetDateTime::now_utc();
        let p = pending(Provider::Oidc, "state-secret", now);
        let debug = format!("{p:?} {:?}", callback("state-secret"));
        assert!(!debug.contains("secret"), "{debug}");
        let back = Pending::unseal(&p.seal()).unwrap();
        assert_eq!(back.created_at().unix_timestamp(), now.unix_timestamp());
        assert_eq!(back.check(Provider::Oidc, &callback("state-secret"), now), Ok("code-secret"));
        assert_eq!(Pending::unseal("{}").unwrap_err(), SsoError::BadState);
    }

    #[test]
    fn a_login_is_found_by_its_states_hash_alone() {
        let p = pending(Provider::GitHub, "s", OffsetDateTime::now_utc());
        assert_eq!(callback("s").state_hash(), Some(p.state_hash()));
        assert_ne!(callback("t").state_hash(), Some(p.state_hash()));
        assert_eq!(p.state_hash().len(), 64, "a SHA-256, not the state");
        assert_eq!(Callback::default().state_hash(), None);
    }
}
