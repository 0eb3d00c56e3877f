//! VAPID (RFC 8292): the server's P-256 key pair, and the signed token that
//! tells a push service which server sends. The pair is made at first start
//! and kept in the database, so every node signs with the same key and the
//! browsers' subscriptions (made for its public half) stay valid.
//!
//! The token is a JWT signed with ES256, written here with p256's ECDSA:
//! web-push-native's own helper puts only scheme and host in `aud`, where
//! the RFC asks for the push resource's origin (with its port, if not the
//! default one).

use p256::{
    ecdsa::{Signature, SigningKey, signature::Signer},
    elliptic_curve::rand_core::OsRng,
};
use serde_json::json;
use url::Url;

use crate::domain::push::{decode, encode};

/// How long a token is good for (the RFC's limit is 24 hours).
pub const TOKEN_LIFETIME_SECS: i64 = 12 * 60 * 60;

/// The server's key pair and who it says runs it.
pub struct Vapid {
    key: SigningKey,
    /// base64url of the uncompressed public point: what browsers subscribe with.
    public: String,
    /// `mailto:` or `https:`, for the push service's operators.
    subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid").field("public", &self.public).field("subject", &self.subject).finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored VAPID private key is not a P-256 key")]
pub struct UnreadableKey;

impl Vapid {
    /// A new key pair: (private, public), base64url.
    pub fn generate() -> (String, String) {
        let key = SigningKey::random(&mut OsRng);
        (encode(&key.to_bytes()), public_of(&key))
    }

    /// The stored pair (its private half) with the subject.
    pub fn from_private(private: &str, subject: String) -> Result<Self, UnreadableKey> {
        let bytes = decode(private).ok_or(UnreadableKey)?;
        let key = SigningKey::from_slice(&bytes).map_err(|_| UnreadableKey)?;
        Ok(Self { public: public_of(&key), key, subject })
    }

    /// base64url of the uncompressed P-256 point (`applicationServerKey`).
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header for a push to `endpoint`, at `now` (unix
    /// seconds): `vapid t=JWT, k=PUBLIC KEY`.
    pub fn authorization(&self, endpoint: &Url, now: i64) -> String {
        let header = encode(json!({ "typ": "JWT", "alg": "ES256" }).to_string().as_bytes());
        let claims = json!({
            "aud": endpoint.origin().ascii_serialization(),
            "exp": now + TOKEN_LIFETIME_SECS,
            "sub": self.subject,
        });
        let signed = format!("{header}.{}", encode(claims.to_string().as_bytes()));
        let signature: Signature = self.key.sign(signed.as_bytes());
        format!("vapid t={signed}.{}, k={}", encode(&signature.to_bytes()), self.public)
    }
}

fn public_of(key: &SigningKey) -> String {
    encode(key.verifying_key().to_encoded_point(false).as_bytes())
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::{VerifyingKey, signature::Verifier};

    use super::*;

    #[test]
    fn a_token_is_an_es256_jwt_for_the_endpoints_origin() {
        let (private, public) = Vapid::generate();
        let vapid = Vapid::from_private(&private, "mailto:ops@example.com".into()).unwrap();
        assert_eq!(vapid.public_key(), public);
        assert_eq!(decode(&public).unwrap().len(), 65);

        let endpoint = Url::parse("https://push.example.net:8443/send/abc").unwrap();
        let header = vapid.authorization(&endpoint, 1_000);
        let (token, key) = header.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
        assert_eq!(key, public);
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let verifying = VerifyingKey::from_sec1_bytes(&decode(key).unwrap()).unwrap();
        let signature = Signature::from_slice(&decode(signature).unwrap()).unwrap();
        verifying.verify(signed.as_bytes(), &signature).unwrap();

        let (head, claims) = signed.split_once('.').unwrap();
        let head: serde_json::Value = serde_json::from_slice(&decode(head).unwrap()).unwrap();
        assert_eq!(head["alg"], "ES256");
        let claims: serde_json::Value = serde_json::from_slice(&decode(claims).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net:8443");
        assert_eq!(claims["exp"], 1_000 + TOKEN_LIFETIME_SECS);
        assert_eq!(claims["sub"], "mailto:ops@example.com");

        let default_port = Url::parse("https://push.example.net/x").unwrap();
        assert!(vapid.authorization(&default_port, 0).len() > 100);
        assert_eq!(Vapid::from_private("junk", String::new()).unwrap_err(), UnreadableKey);
    }
}
