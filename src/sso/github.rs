//! GitHub's OAuth web application flow, as GitHub documents it
//! ("Authorizing OAuth apps"), with PKCE (S256, which GitHub accepts since
//! July 2025):
//!
//! 1. `GET GITHUB_URL/login/oauth/authorize?client_id&redirect_uri&scope&state&code_challenge&code_challenge_method=S256`
//! 2. `POST GITHUB_URL/login/oauth/access_token` with `client_id`,
//!    `client_secret` (in the body, as documented), `code`, `redirect_uri`,
//!    `code_verifier`, asking for JSON. GitHub answers errors with 200 and
//!    an error object (`bad_verification_code`, `incorrect_client_credentials`…).
//! 3. `GET GITHUB_API_URL/user` with the token: the numeric `id` is the
//!    identity, `login` the username hint. When the profile's email is not
//!    public, `GET GITHUB_API_URL/user/emails` gives the primary one.
//!
//! GitHub has no ID token: the identity rests on the TLS connection to
//! `GITHUB_API_URL` and on the token, which is used for these calls only.

use oauth2::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
    basic::BasicClient,
};
use openidconnect::http::{self, header};
use serde::{Deserialize, de::DeserializeOwned};
use time::OffsetDateTime;
use url::Url;

use super::{
    Pending, Provider, ProviderIdentity, SsoConfigError, SsoError,
    http::{Http, token_error},
};
use crate::config::{Secret, SignIn};

/// Read-only access to the profile and to the email addresses: all Lobby
/// reads, nothing it could change.
const SCOPES: [&str; 2] = ["read:user", "user:email"];

/// GitHub's REST API version these calls are written to.
const API_VERSION: &str = "2022-11-28";

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub(super) struct GitHub {
    client_id: String,
    client_secret: Secret,
    authorize_url: AuthUrl,
    token_url: TokenUrl,
    /// `GITHUB_URL` without a trailing slash: the identities' issuer.
    site: String,
    /// `GITHUB_API_URL` without a trailing slash: GitHub Enterprise's API
    /// lives under a path (`/api/v3`), so endpoints are appended to it.
    api: String,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    name: Option<String>,
    email: Option<String>,
    avatar_url: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    primary: bool,
    verified: bool,
}

impl GitHub {
    pub(super) fn from_settings(s: &SignIn) -> Result<Option<Self>, SsoConfigError> {
        let (client_id, client_secret) = match (&s.github_client_id, &s.github_client_secret) {
            (None, None) => return Ok(None),
            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
            (Some(_), None) => {
                return Err(SsoConfigError::Incomplete {
                    set: "GITHUB_CLIENT_ID",
                    missing: "GITHUB_CLIENT_SECRET",
                });
            }
            (None, Some(_)) => {
                return Err(SsoConfigError::Incomplete {
                    set: "GITHUB_CLIENT_SECRET",
                    missing: "GITHUB_CLIENT_ID",
                });
            }
        };
        let site = base("GITHUB_URL", &s.github_url)?;
        let api = base("GITHUB_API_URL", &s.github_api_url)?;
        let endpoint = |path: &str| {
            Url::parse(&format!("{site}{path}"))
                .map_err(|_| SsoConfigError::BadUrl { setting: "GITHUB_URL", value: s.github_url.clone() })
        };
        Ok(Some(Self {
            client_id,
            client_secret,
            authorize_url: AuthUrl::from_url(endpoint("/login/oauth/authorize")?),
            token_url: TokenUrl::from_url(endpoint("/login/oauth/access_token")?),
            site,
            api,
        }))
    }

    fn client(&self, redirect_uri: Url) -> Client {
        BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.expose().to_owned()))
            .set_auth_uri(self.authorize_url.clone())
            .set_token_uri(self.token_url.clone())
            .set_redirect_uri(RedirectUrl::from_url(redirect_uri))
            .set_auth_type(AuthType::RequestBody)
    }

    pub(super) fn issuer(&self) -> &str {
        &self.site
    }

    pub(super) fn begin(&self, redirect_uri: &Url, now: OffsetDateTime) -> (Url, Pending) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client(redirect_uri.clone())
            .authorize_url(CsrfToken::new_random)
            .add_scopes(SCOPES.map(|s| Scope::new(s.to_owned())))
            .set_pkce_challenge(challenge)
            .url();
        let pending = Pending {
            provider: Provider::GitHub,
            state: state.into_secret(),
            pkce_verifier: verifier.into_secret(),
            nonce: None,
            redirect_uri: redirect_uri.to_string(),
            created_at: now,
        };
        (url, pending)
    }

    pub(super) async fn finish(
        &self,
        http: &Http,
        pending: Pending,
        code: &str,
    ) -> Result<ProviderIdentity, SsoError> {
        let redirect_uri = Url::parse(&pending.redirect_uri).map_err(|_| SsoError::BadState)?;
        let token = self
            .client(redirect_uri)
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(http)
            .await
            .map_err(token_error)?;
        let token = token.access_token();
        let user: User = self.get(http, token, "/user").await?;
        let (email, email_verified) = match user.email {
            // GitHub only lets a verified address be public.
            Some(email) => (Some(email), true),
            None => match self.get::<Vec<Email>>(http, token, "/user/emails").await {
                Ok(emails) => emails
                    .into_iter()
                    .find(|e| e.primary)
                    .map_or((None, false), |e| (Some(e.email), e.verified)),
                // The email only fills the profile: without it, the login goes on.
                Err(_) => (None, false),
            },
        };
        Ok(ProviderIdentity {
            provider: Provider::GitHub,
            issuer: self.site.clone(),
            subject: user.id.to_string(),
            username_hint: Some(user.login).filter(|l| !l.is_empty()),
            display_name: user.name.filter(|n| !n.trim().is_empty()),
            email,
            email_verified,
            avatar_url: user.avatar_url,
        })
    }

    /// `GET GITHUB_API_URL{path}` with the user's token, as JSON.
    async fn get<T: DeserializeOwned>(
        &self,
        http: &Http,
        token: &AccessToken,
        path: &str,
    ) -> Result<T, SsoError> {
        let request = http::Request::get(format!("{}{path}", self.api))
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header(header::AUTHORIZATION, format!("Bearer {}", token.secret()))
            .body(Vec::new())
            .map_err(|_| SsoError::BadResponse)?;
        let response = http.send(request).await.map_err(|e| e.to_sso("reading the GitHub user"))?;
        if !response.status().is_success() {
            tracing::warn!(status = %response.status(), path, "GitHub's API refused the new token");
            return Err(SsoError::BadResponse);
        }
        serde_json::from_slice(response.body()).map_err(|e| {
            tracing::warn!(error = %e, path, "GitHub's API answered something else than documented");
            SsoError::BadResponse
        })
    }
}

/// A base URL setting, checked, without its trailing slash.
pub(super) fn base(setting: &'static str, value: &str) -> Result<String, SsoConfigError> {
    let bad = || SsoConfigError::BadUrl { setting, value: value.to_owned() };
    let url = Url::parse(value).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.query().is_some() || url.fragment().is_some() {
        return Err(bad());
    }
    Ok(value.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SignIn {
        SignIn {
            github_client_id: Some("Iv1.lobby".into()),
            github_client_secret: Some(Secret::new("s3cret")),
            github_url: "https://ghe.example/".into(),
            github_api_url: "https://ghe.example/api/v3".into(),
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_name: None,
        }
    }

    #[test]
    fn endpoints_sit_under_the_configured_urls() {
        let gh = GitHub::from_settings(&settings()).unwrap().unwrap();
        assert_eq!(gh.authorize_url.as_str(), "https://ghe.example/login/oauth/authorize");
        assert_eq!(gh.token_url.as_str(), "https://ghe.example/login/oauth/access_token");
        assert_eq!(gh.api, "https://ghe.example/api/v3");
    }

    #[test]
    fn the_authorization_url_asks_for_pkce_and_read_only_scopes() {
        let gh = GitHub::from_settings(&settings()).unwrap().unwrap();
        let redirect = Url::parse("https://chat.example/auth/github/callback").unwrap();
        let (url, pending) = gh.begin(&redirect, OffsetDateTime::now_utc());
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "Iv1.lobby");
        assert_eq!(q["redirect_uri"], redirect.as_str());
        assert_eq!(q["scope"], "read:user user:email");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["state"], pending.state);
        assert!(q["state"].len() >= 22, "at least 128 bits");
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(pending.pkce_verifier));
        assert_eq!(&q["code_challenge"], challenge.as_str());
        assert!(!q.contains_key("client_secret"));
    }

    #[test]
    fn half_a_setting_is_an_error() {
        let mut s = settings();
        s.github_client_secret = None;
        assert!(matches!(GitHub::from_settings(&s), Err(SsoConfigError::Incomplete { .. })));
        let mut s = settings();
        s.github_api_url = "ftp://nope".into();
        assert!(matches!(GitHub::from_settings(&s), Err(SsoConfigError::BadUrl { .. })));
        let mut s = settings();
        (s.github_client_id, s.github_client_secret) = (None, None);
        assert!(GitHub::from_settings(&s).unwrap().is_none());
    }
}
