//! The one HTTP client for talking to providers, and what its failures mean.
//!
//! reqwest, with: no redirects followed (a token endpoint that redirects
//! could send the client secret elsewhere; oauth2's docs ask for this),
//! every request bounded by [`PROVIDER_TIMEOUT`] from connect to last byte,
//! answers capped at [`MAX_BODY`] (a provider is trusted to sign people in,
//! not to fill our memory), and a 5xx turned into an error here so that
//! "down" reads the same whichever endpoint said it.

use std::{future::Future, pin::Pin};

use oauth2::basic::BasicErrorResponse;
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse, RequestTokenError, http};
use reqwest::StatusCode;

use super::{PROVIDER_TIMEOUT, SsoConfigError, SsoError};

/// The largest answer read from a provider (discovery documents and key sets
/// are a few KiB).
const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone)]
pub(super) struct Http {
    client: reqwest::Client,
}

/// A provider call that did not produce an answer to read.
#[derive(Debug, thiserror::Error)]
pub(super) enum HttpError {
    #[error("no answer within {PROVIDER_TIMEOUT:?}")]
    TimedOut,
    #[error("could not connect: {0}")]
    Unreachable(String),
    #[error("the provider answered {0}")]
    ServerError(StatusCode),
    #[error("the answer is over {MAX_BODY} bytes")]
    TooLarge,
    #[error("{0}")]
    Other(String),
}

impl HttpError {
    fn from_reqwest(e: reqwest::Error) -> Self {
        // The error's text has the URL (never a secret: those travel in
        // headers and bodies) and the cause, for the log.
        if e.is_timeout() {
            HttpError::TimedOut
        } else if e.is_connect() {
            HttpError::Unreachable(error_chain(&e))
        } else {
            HttpError::Other(error_chain(&e))
        }
    }

    /// What this means to the user; logs the detail.
    pub(super) fn to_sso(&self, during: &'static str) -> SsoError {
        tracing::warn!(error = %self, "{during} failed");
        match self {
            HttpError::TimedOut => SsoError::TimedOut,
            HttpError::Unreachable(_) | HttpError::ServerError(_) => SsoError::Unavailable,
            HttpError::TooLarge => SsoError::BadResponse,
            HttpError::Other(_) => SsoError::Unavailable,
        }
    }
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Http {
    pub(super) fn new() -> Result<Self, SsoConfigError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .user_agent(concat!("Lobby/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SsoConfigError::Client(error_chain(&e)))?;
        Ok(Self { client })
    }

    /// Sends `request` and reads the whole answer (up to [`MAX_BODY`]). Any
    /// status but 5xx is an answer for the protocol layer to judge.
    pub(super) async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request).map_err(|e| HttpError::Other(error_chain(&e)))?;
        let mut response = self.client.execute(request).await.map_err(HttpError::from_reqwest)?;
        if response.status().is_server_error() {
            return Err(HttpError::ServerError(response.status()));
        }
        if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(HttpError::TooLarge);
        }
        let mut answer = http::Response::builder().status(response.status()).version(response.version());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(HttpError::from_reqwest)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        answer.body(body).map_err(|e| HttpError::Other(e.to_string()))
    }
}

/// Lets the `oauth2` and `openidconnect` crates make their requests through
/// [`Http::send`].
impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// What a failed token request means. Shared by both providers: GitHub
/// speaks OAuth 2.0's error codes too, with a few of its own.
pub(super) fn token_error(e: RequestTokenError<HttpError, BasicErrorResponse>) -> SsoError {
    match e {
        RequestTokenError::ServerResponse(err) => refused_code(err.error().as_ref(), err.error_description()),
        RequestTokenError::Request(e) => e.to_sso("the token request"),
        // GitHub answers an error with 200 and an error object, which oauth2
        // reads as a token response that does not parse.
        RequestTokenError::Parse(_, body) => match serde_json::from_slice::<BasicErrorResponse>(&body) {
            Ok(err) => refused_code(err.error().as_ref(), err.error_description()),
            Err(_) => {
                // The body is not logged: it may hold a token.
                tracing::warn!("the token endpoint's answer is neither a token response nor an error");
                SsoError::BadResponse
            }
        },
        RequestTokenError::Other(text) => {
            tracing::warn!(error = %text, "the token endpoint's answer could not be used");
            SsoError::BadResponse
        }
    }
}

/// An OAuth 2.0 error code from a token endpoint (RFC 6749 §5.2, and
/// GitHub's own), as the user's error. The provider's description is for
/// the operator's log only.
fn refused_code(code: &str, description: Option<&String>) -> SsoError {
    tracing::warn!(
        error = %code.escape_debug(),
        description = %description.map_or("", |d| d.as_str()).escape_debug(),
        "the token endpoint refused the code"
    );
    match code {
        // RFC 6749's word for a code that is used, expired, or not for this
        // PKCE verifier or redirect URI; GitHub's for the same.
        "invalid_grant" | "bad_verification_code" => SsoError::BadCode,
        "temporarily_unavailable" | "server_error" => SsoError::Unavailable,
        // invalid_client, unauthorized_client, invalid_scope, invalid_request,
        // GitHub's incorrect_client_credentials and redirect_uri_mismatch…:
        // Lobby's settings, not the user, are wrong.
        _ => SsoError::Refused,
    }
}
