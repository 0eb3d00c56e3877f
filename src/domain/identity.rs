//! Identities at other sites: an account may be signed in to through GitHub
//! or an OpenID Connect provider. An identity is the provider's stable id
//! for a person, within that provider ([`IdentityKey`]); it belongs to one
//! account. What the provider says about the person besides
//! ([`IdentityProfile`]) fills the account's record of it and is refreshed
//! at each login: it is never a key to find an account by.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Which provider an identity is at. Its name ("github", "oidc") is the one
/// in the routes and in stored identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    GitHub,
    Oidc,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::GitHub, Provider::Oidc];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::Oidc => "oidc",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("there is no sign-in provider called {0:?}")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, UnknownProvider> {
        match s {
            "github" => Ok(Provider::GitHub),
            "oidc" => Ok(Provider::Oidc),
            _ => Err(UnknownProvider(s.to_owned())),
        }
    }
}

/// Who a provider says someone is. A subject is unique only within its
/// issuer (`GITHUB_URL`, the OpenID Connect issuer), so the issuer is part
/// of the key: an identity stored under one provider never matches a login
/// at another that happens to use the same subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdentityKey {
    pub provider: Provider,
    pub issuer: String,
    /// GitHub's numeric user id, the OpenID Connect `sub`.
    pub subject: String,
}

/// What a provider tells about a person at a login, as the course's third
/// challenge keeps it: a display name, a photo URL and an email. Capped, as
/// a provider is trusted to say who someone is, not to fill the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityProfile {
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Kept, never loaded by our pages: the content security policy allows
    /// images from this site only (see docs/design.md).
    pub photo_url: Option<String>,
}

/// The most characters of each profile field kept.
const NAME_CHARS: usize = 200;
const EMAIL_CHARS: usize = 320;
const URL_CHARS: usize = 2048;

impl IdentityProfile {
    /// A profile from what a provider said: blank values are none, and each
    /// is trimmed and capped.
    pub fn new(display_name: Option<&str>, email: Option<&str>, photo_url: Option<&str>) -> Self {
        fn kept(value: Option<&str>, cap: usize) -> Option<String> {
            let value: String = value?.trim().chars().filter(|c| !c.is_control()).take(cap).collect();
            (!value.is_empty()).then_some(value)
        }
        Self {
            display_name: kept(display_name, NAME_CHARS),
            email: kept(email, EMAIL_CHARS),
            photo_url: kept(photo_url, URL_CHARS),
        }
    }
}

/// An identity linked to an account, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: i64,
    pub user_id: i64,
    pub key: IdentityKey,
    pub profile: IdentityProfile,
    /// Unix seconds: when it was linked (or made the account).
    pub created_at: i64,
    /// Unix seconds; `None`: linked, never logged in with yet.
    pub last_login_at: Option<i64>,
    /// Logins through it; each raises it by one.
    pub login_count: i64,
}

/// A sign-in on its way through a provider, between the redirect there and
/// the callback here, whichever node each reaches.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    /// A hash of the `state` sent to the provider: how the callback finds it.
    pub state_hash: String,
    /// A hash of the id of the browser session it began in: the callback
    /// must come with the same session.
    pub session_hash: String,
    pub provider: Provider,
    /// What the sign-in needs at the callback (its PKCE verifier, nonce and
    /// redirect URI), sealed by the one who made it: secrets, opaque here.
    pub login: String,
    /// The local path the sign-in ends on.
    pub next: Option<String>,
    /// The hash of the invite the sign-in came with (from `/join/TOKEN`).
    pub invite_hash: Option<String>,
    /// The account that asked to link this provider (a logged-in user).
    pub link_user: Option<i64>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The secrets stay out of logs.
impl fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("provider", &self.provider)
            .field("next", &self.next)
            .field("invite", &self.invite_hash.is_some())
            .field("link_user", &self.link_user)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_read_back_what_they_write() {
        for provider in Provider::ALL {
            assert_eq!(provider.as_str().parse(), Ok(provider));
        }
        assert!("GitHub".parse::<Provider>().is_err());
    }

    #[test]
    fn profiles_keep_what_is_there_and_cap_it() {
        let p = IdentityProfile::new(Some("  Alice\u{7} Liddell "), Some(""), Some(&"x".repeat(5000)));
        assert_eq!(p.display_name.as_deref(), Some("Alice Liddell"));
        assert_eq!(p.email, None);
        assert_eq!(p.photo_url.map(|u| u.len()), Some(URL_CHARS));
    }
}
