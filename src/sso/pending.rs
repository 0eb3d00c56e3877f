//! A login between `begin` and `finish`: what the browser's session keeps
//! while the user is at the provider, and the callback that ends it.

use std::fmt;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::{Provider, STATE_TTL, SsoError};

/// One login in progress. It holds secrets (the PKCE verifier above all), so
/// it lives only in the server-side session, never in a cookie or a URL,
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

/// The logins in progress in one browser session, each with what the caller
/// wants back at the callback (`T`: where to go next, an invite, an account
/// to link…). Several, because a user may start a login in two tabs; a few
/// at most, because a session is no place to pile them up.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "T: Serialize + DeserializeOwned")]
pub struct PendingLogins<T = ()> {
    logins: Vec<(Pending, T)>,
}

impl<T> Default for PendingLogins<T> {
    fn default() -> Self {
        Self { logins: Vec::new() }
    }
}

impl<T> PendingLogins<T> {
    /// The most logins one session holds; a new one pushes out the oldest.
    pub const MAX: usize = 4;

    /// Adds a login, first dropping those expired at `now`.
    pub fn insert(&mut self, pending: Pending, extra: T, now: OffsetDateTime) {
        self.logins.retain(|(p, _)| !p.is_expired_at(now));
        if self.logins.len() >= Self::MAX {
            self.logins.remove(0);
        }
        self.logins.push((pending, extra));
    }

    /// Takes out the login the callback's `state` belongs to, for
    /// `provider`: a state is good for one callback. `None` (a forged,
    /// replayed or foreign callback) is [`SsoError::BadState`] to the
    /// caller. Every entry is compared, in constant time.
    pub fn take(&mut self, provider: Provider, callback: &Callback) -> Option<(Pending, T)> {
        let state = callback.state.as_deref()?;
        let mut found = None;
        for (i, (pending, _)) in self.logins.iter().enumerate() {
            if pending.has_state(state) & (pending.provider == provider) {
                found = Some(i);
            }
        }
        found.map(|i| self.logins.remove(i))
    }

    pub fn is_empty(&self) -> bool {
        self.logins.is_empty()
    }

    pub fn len(&self) -> usize {
        self.logins.len()
    }
}

impl<T> fmt::Debug for PendingLogins<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.logins.iter().map(|(p, _)| p)).finish()
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
    fn a_state_is_taken_once_and_only_for_its_provider() {
        let now = OffsetDateTime::now_utc();
        let mut logins = PendingLogins::<&str>::default();
        logins.insert(pending(Provider::Oidc, "s1", now), "/chat", now);
        logins.insert(pending(Provider::GitHub, "s2", now), "/profile", now);
        assert!(logins.take(Provider::GitHub, &callback("s1")).is_none(), "s1 began with oidc");
        assert!(logins.take(Provider::Oidc, &callback("s1x")).is_none());
        assert!(logins.take(Provider::Oidc, &Callback::default()).is_none());
        let (p, next) = logins.take(Provider::Oidc, &callback("s1")).unwrap();
        assert_eq!((p.provider(), next), (Provider::Oidc, "/chat"));
        assert!(logins.take(Provider::Oidc, &callback("s1")).is_none(), "used once");
        assert_eq!(logins.len(), 1);
    }

    #[test]
    fn a_session_keeps_a_few_logins_and_drops_expired_ones() {
        let now = OffsetDateTime::now_utc();
        let mut logins = PendingLogins::<()>::default();
        logins.insert(pending(Provider::Oidc, "old", now - STATE_TTL * 2), (), now);
        logins.insert(pending(Provider::Oidc, "a", now), (), now);
        assert_eq!(logins.len(), 1, "the expired one is gone");
        for s in ["b", "c", "d", "e"] {
            logins.insert(pending(Provider::Oidc, s, now), (), now);
        }
        assert_eq!(logins.len(), PendingLogins::<()>::MAX);
        assert!(logins.take(Provider::Oidc, &callback("a")).is_none(), "the oldest made room");
        assert!(logins.take(Provider::Oidc, &callback("e")).is_some());
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
    fn secrets_stay_out_of_debug_and_survive_a_session_round_trip() {
        let now = OffsetDateTime::now_utc();
        let mut logins = PendingLogins::<String>::default();
        logins.insert(pending(Provider::Oidc, "state-secret", now), "/chat".into(), now);
        let debug = format!("{logins:?} {:?}", callback("state-secret"));
        assert!(!debug.contains("secret"), "{debug}");
        let json = serde_json::to_string(&logins).unwrap();
        let mut back: PendingLogins<String> = serde_json::from_str(&json).unwrap();
        let (p, next) = back.take(Provider::Oidc, &callback("state-secret")).unwrap();
        assert_eq!(next, "/chat");
        assert_eq!(p.created_at().unix_timestamp(), now.unix_timestamp());
    }
}
