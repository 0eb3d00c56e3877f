//! What can go wrong with a sign-in, in words a user can act on.
//!
//! The provider's own error text never reaches a user (it may be in another
//! language, blame the wrong party, or be chosen by whoever forged the
//! callback); the detail is logged where it happens, for the operator.

use super::Provider;

/// Why a login through a provider did not happen. `Display` says it to the
/// user with "The sign-in provider" as the subject; [`SsoError::message`]
/// names the provider instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoError {
    /// That provider is not set up on this server (404).
    NotConfigured,
    /// The user said no at the provider (`error=access_denied`).
    Denied,
    /// The callback's `state` is missing, wrong, already used, or from
    /// another browser: a forgery or a replay (403).
    BadState,
    /// The login began more than [`STATE_TTL`](super::STATE_TTL) ago.
    Expired,
    /// The provider could not be reached, or answered with a server error.
    Unavailable,
    /// The provider took longer than [`PROVIDER_TIMEOUT`](super::PROVIDER_TIMEOUT).
    TimedOut,
    /// The provider answered something that is not what its protocol says.
    BadResponse,
    /// The authorization code was refused (used, expired, or not for this
    /// PKCE verifier), or the callback had none.
    BadCode,
    /// The ID token (or the callback's `iss`) failed verification: bad
    /// signature, unknown key, wrong issuer, audience or nonce, expired.
    InvalidToken,
    /// The provider refused Lobby itself: a wrong client id or secret, a
    /// redirect URI it does not know, a scope it does not allow. Only the
    /// administrator can fix it.
    Refused,
}

impl SsoError {
    /// The message for a user, naming the provider by `label` ("GitHub", or
    /// the OIDC provider's name).
    pub fn message(&self, label: &str) -> String {
        match self {
            SsoError::NotConfigured => format!("{label} is not set up on this server."),
            SsoError::Denied => {
                format!("{label} did not let you in: the sign-in was cancelled there. You can try again.")
            }
            SsoError::BadState => {
                "That sign-in link is not valid in this browser (it may have been used already). Start again from the login page.".to_owned()
            }
            SsoError::Expired => {
                "The sign-in took more than 10 minutes. Please start again.".to_owned()
            }
            SsoError::Unavailable => {
                format!("{label} could not be reached. Try again in a few minutes.")
            }
            SsoError::TimedOut => {
                format!("{label} did not answer in time. Try again in a few minutes.")
            }
            SsoError::BadResponse => {
                format!("{label} gave an answer this server could not use. Try again later; if it keeps happening, tell the administrator.")
            }
            SsoError::BadCode => {
                format!("{label} did not accept the sign-in code (it may have expired or been used). Please start again.")
            }
            SsoError::InvalidToken => {
                format!("{label}'s answer could not be verified, so you were not signed in. Please start again; if it keeps happening, tell the administrator.")
            }
            SsoError::Refused => {
                format!("{label} refused this server's sign-in request. Tell the administrator: the server's settings for {label} need checking.")
            }
        }
    }

    /// True for a callback that this browser's session did not ask for: the
    /// caller answers it with 403 rather than a page.
    pub fn is_forged(&self) -> bool {
        matches!(self, SsoError::BadState)
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SsoError::NotConfigured => "not_configured",
            SsoError::Denied => "denied",
            SsoError::BadState => "bad_state",
            SsoError::Expired => "expired",
            SsoError::Unavailable => "unavailable",
            SsoError::TimedOut => "timed_out",
            SsoError::BadResponse => "bad_response",
            SsoError::BadCode => "bad_code",
            SsoError::InvalidToken => "invalid_token",
            SsoError::Refused => "refused",
        }
    }

    /// Every kind of failure.
    pub const ALL: [SsoError; 10] = [
        SsoError::NotConfigured,
        SsoError::Denied,
        SsoError::BadState,
        SsoError::Expired,
        SsoError::Unavailable,
        SsoError::TimedOut,
        SsoError::BadResponse,
        SsoError::BadCode,
        SsoError::InvalidToken,
        SsoError::Refused,
    ];

    /// The error a [`kind`](Self::kind) names.
    pub fn from_kind(kind: &str) -> Option<SsoError> {
        Self::ALL.into_iter().find(|e| e.kind() == kind)
    }

    /// One line for the operator. What the user did is `info`; what the
    /// provider or the settings did is `warn` (its detail was logged where
    /// it was found).
    pub(super) fn log(&self, provider: Provider) {
        match self {
            SsoError::NotConfigured | SsoError::Denied | SsoError::BadState | SsoError::Expired => {
                tracing::info!(%provider, error = self.kind(), "sign-in not completed")
            }
            _ => tracing::warn!(%provider, error = self.kind(), "sign-in failed"),
        }
    }
}

impl std::fmt::Display for SsoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message("The sign-in provider"))
    }
}

impl std::error::Error for SsoError {}

/// A sign-in setting that cannot work; the server refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum SsoConfigError {
    #[error("{set} is set but {missing} is not: set both to turn this sign-in on, or neither")]
    Incomplete { set: &'static str, missing: &'static str },
    #[error("{setting} must be an http:// or https:// URL (got {value:?})")]
    BadUrl { setting: &'static str, value: String },
    #[error("the HTTP client for sign-in providers could not be set up: {0}")]
    Client(String),
}
