//! One OpenID Connect provider: the authorization code flow with PKCE,
//! `scope=openid profile email`, a nonce, and the ID token verified by the
//! `openidconnect` crate (signature by the provider's published keys, `iss`,
//! `aud`, `exp`, `nonce`). Its endpoints and keys come from [`Discovery`].

use openidconnect::{
    AccessToken, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError, SubjectIdentifier, TokenResponse,
    core::{
        CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreIdToken, CoreIdTokenClaims,
        CoreIdTokenVerifier, CoreJwsSigningAlgorithm, CoreUserInfoClaims,
    },
};
use time::OffsetDateTime;
use url::Url;

use super::{
    Callback, Pending, Provider, ProviderIdentity, SsoConfigError, SsoError,
    discovery::{Discovered, Discovery},
    http::{Http, error_chain, token_error},
};
use crate::config::{Secret, SignIn};

/// The ID token signatures accepted: public-key ones only, and of those the
/// ones the provider says it uses. (An HMAC keyed by the client secret is
/// allowed by the protocol, but anyone who has read Lobby's settings could
/// make one.)
static ASYMMETRIC: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// A client made from a discovery: authorization endpoint known, token and
/// UserInfo endpoints as the provider listed them.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

pub(super) struct Oidc {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Secret,
    label: String,
    discovery: Discovery,
}

impl Oidc {
    pub(super) fn from_settings(s: &SignIn) -> Result<Option<Self>, SsoConfigError> {
        let (issuer, client_id, client_secret) =
            match (&s.oidc_issuer, &s.oidc_client_id, &s.oidc_client_secret) {
                (None, None, None) => return Ok(None),
                (Some(issuer), Some(id), Some(secret)) => (issuer, id, secret),
                (issuer, id, _) => {
                    let set = if issuer.is_some() {
                        "OIDC_ISSUER"
                    } else if id.is_some() {
                        "OIDC_CLIENT_ID"
                    } else {
                        "OIDC_CLIENT_SECRET"
                    };
                    let missing = if issuer.is_none() {
                        "OIDC_ISSUER"
                    } else if id.is_none() {
                        "OIDC_CLIENT_ID"
                    } else {
                        "OIDC_CLIENT_SECRET"
                    };
                    return Err(SsoConfigError::Incomplete { set, missing });
                }
            };
        // The issuer is kept as written: the provider's `iss` must match it
        // exactly, and a URL parser would add a trailing slash to a bare host.
        super::github::base("OIDC_ISSUER", issuer)?;
        let issuer = IssuerUrl::new(issuer.clone())
            .map_err(|_| SsoConfigError::BadUrl { setting: "OIDC_ISSUER", value: issuer.clone() })?;
        let label = s
            .oidc_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .or_else(|| issuer.url().host_str().map(str::to_owned))
            .unwrap_or_else(|| "OpenID Connect".to_owned());
        Ok(Some(Self {
            issuer: issuer.clone(),
            client_id: ClientId::new(client_id.clone()),
            client_secret: client_secret.clone(),
            label,
            discovery: Discovery::new(issuer.clone(), &ASYMMETRIC),
        }))
    }

    pub(super) fn label(&self) -> &str {
        &self.label
    }

    pub(super) fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    pub(super) async fn begin(
        &self,
        http: &Http,
        redirect_uri: &Url,
        now: OffsetDateTime,
    ) -> Result<(Url, Pending), SsoError> {
        let discovered = self.discovery.get(http).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = self
            .client(&discovered, redirect_uri.clone())
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".to_owned()))
            .add_scope(Scope::new("email".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        let pending = Pending {
            provider: Provider::Oidc,
            state: state.into_secret(),
            pkce_verifier: verifier.into_secret(),
            nonce: Some(nonce.secret().clone()),
            redirect_uri: redirect_uri.to_string(),
            created_at: now,
        };
        Ok((url, pending))
    }

    pub(super) async fn finish(
        &self,
        http: &Http,
        pending: Pending,
        callback: &Callback,
        code: &str,
    ) -> Result<ProviderIdentity, SsoError> {
        // RFC 9207: a provider that names itself in the callback must be ours
        // (a login begun here and answered by another provider is a mix-up).
        if callback.iss.as_deref().is_some_and(|iss| iss != self.issuer.as_str()) {
            tracing::warn!("the callback's iss is not OIDC_ISSUER");
            return Err(SsoError::InvalidToken);
        }
        let nonce = Nonce::new(pending.nonce.ok_or(SsoError::BadState)?);
        let redirect_uri = Url::parse(&pending.redirect_uri).map_err(|_| SsoError::BadState)?;
        let discovered = self.discovery.get(http).await?;
        let client = self.client(&discovered, redirect_uri);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| SsoError::BadResponse)?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(http)
            .await
            .map_err(token_error)?;
        let id_token = token.id_token().ok_or_else(|| {
            tracing::warn!("the token response has no ID token");
            SsoError::InvalidToken
        })?;
        let claims = match self.verify(&discovered, id_token, &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // A key we have not seen: the provider may have rotated.
                let refreshed = self.discovery.refresh_keys(http, &discovered).await?;
                self.verify(&refreshed, id_token, &nonce)
            }
            verified => verified,
        }
        .map_err(|e| {
            tracing::warn!(error = %error_chain(&e), "the ID token failed verification");
            SsoError::InvalidToken
        })?;
        let mut profile = Profile::from_id_token(&claims);
        if discovered.metadata.userinfo_endpoint().is_some() {
            // Many providers put the profile in the UserInfo answer rather
            // than the ID token. It only fills the profile: without it, the
            // login goes on with the ID token's claims.
            match self.user_info(http, &client, token.access_token(), claims.subject()).await {
                Ok(info) => profile = profile.or(Profile::from_user_info(&info)),
                Err(e) => tracing::warn!(error = %e, "the UserInfo request failed; going on without it"),
            }
        }
        let username_hint = profile
            .username
            .or_else(|| profile.email.as_deref().and_then(|e| e.split('@').next()).map(str::to_owned))
            .filter(|u| !u.trim().is_empty());
        Ok(ProviderIdentity {
            provider: Provider::Oidc,
            issuer: self.issuer.as_str().to_owned(),
            subject: claims.subject().as_str().to_owned(),
            username_hint,
            display_name: profile.name,
            email: profile.email,
            email_verified: profile.email_verified.unwrap_or(false),
            avatar_url: profile.picture,
        })
    }

    fn client(&self, discovered: &Discovered, redirect_uri: Url) -> Client {
        // client_secret_basic is the protocol's default; a provider that
        // only takes the secret in the body says so in its discovery.
        let methods = discovered.metadata.token_endpoint_auth_methods_supported();
        let basic = methods.is_none_or(|m| m.contains(&CoreClientAuthMethod::ClientSecretBasic));
        let post = methods.is_some_and(|m| m.contains(&CoreClientAuthMethod::ClientSecretPost));
        CoreClient::from_provider_metadata(
            discovered.metadata.clone(),
            self.client_id.clone(),
            Some(ClientSecret::new(self.client_secret.expose().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::from_url(redirect_uri))
        .set_auth_type(if !basic && post { AuthType::RequestBody } else { AuthType::BasicAuth })
    }

    fn verify(
        &self,
        discovered: &Discovered,
        id_token: &CoreIdToken,
        nonce: &Nonce,
    ) -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
        let offered = discovered.metadata.id_token_signing_alg_values_supported();
        let allowed = ASYMMETRIC.iter().filter(|alg| offered.contains(alg)).cloned();
        let verifier = CoreIdTokenVerifier::new_confidential_client(
            self.client_id.clone(),
            ClientSecret::new(self.client_secret.expose().to_owned()),
            self.issuer.clone(),
            discovered.keys.clone(),
        )
        .set_allowed_algs(allowed);
        id_token.claims(&verifier, nonce).cloned()
    }

    async fn user_info(
        &self,
        http: &Http,
        client: &Client,
        token: &AccessToken,
        subject: &SubjectIdentifier,
    ) -> Result<CoreUserInfoClaims, String> {
        // The answer must be about the ID token's subject (checked by the crate).
        client
            .user_info(token.clone(), Some(subject.clone()))
            .map_err(|e| e.to_string())?
            .request_async(http)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The profile claims, from the ID token or the UserInfo answer.
struct Profile {
    username: Option<String>,
    name: Option<String>,
    email: Option<String>,
    email_verified: Option<bool>,
    picture: Option<String>,
}

macro_rules! profile_from {
    ($claims:expr) => {{
        let c = $claims;
        Profile {
            username: c.preferred_username().map(|u| u.as_str().to_owned()),
            name: c.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned()),
            email: c.email().map(|e| e.as_str().to_owned()),
            email_verified: c.email_verified(),
            picture: c.picture().and_then(|p| p.get(None)).map(|p| p.as_str().to_owned()),
        }
    }};
}

impl Profile {
    fn from_id_token(claims: &CoreIdTokenClaims) -> Self {
        profile_from!(claims)
    }

    fn from_user_info(info: &CoreUserInfoClaims) -> Self {
        profile_from!(info.standard_claims())
    }

    /// Each claim from `self`, else from `other`. The email and whether it
    /// was verified go together.
    fn or(self, other: Profile) -> Profile {
        let (email, email_verified) = match self.email {
            Some(email) => (Some(email), self.email_verified),
            None => (other.email, other.email_verified),
        };
        Profile {
            username: self.username.or(other.username),
            name: self.name.or(other.name),
            email,
            email_verified,
            picture: self.picture.or(other.picture),
        }
    }
}
