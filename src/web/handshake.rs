//! The WebSocket opening handshake, server side (RFC 6455, section 4.2):
//! what a client's upgrade request must hold, and the answer when it does not.

use axum::{
    http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header},
    response::{IntoResponse, Response},
};

/// Why an upgrade request is not a WebSocket handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadHandshake {
    /// The handshake is a GET (405, with `Allow: GET`).
    NotGet,
    /// HTTP/1.1 or later (400).
    OldHttp,
    /// No `Host` (400).
    NoHost,
    /// No `Upgrade: websocket` with `Connection: Upgrade` (426, with `Upgrade: websocket`).
    NotUpgrade,
    /// `Sec-WebSocket-Version` other than one `13` (426, with `Sec-WebSocket-Version: 13`).
    Version,
    /// `Sec-WebSocket-Key` missing, doubled, or not base64 of 16 bytes (400).
    Key,
}

/// Checks the request and derives the `Sec-WebSocket-Accept` answer.
pub fn accept(method: &Method, version: Version, headers: &HeaderMap) -> Result<HeaderValue, BadHandshake> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if method != Method::GET {
        return Err(BadHandshake::NotGet);
    }
    if version < Version::HTTP_11 {
        return Err(BadHandshake::OldHttp);
    }
    if !headers.contains_key(header::HOST) {
        return Err(BadHandshake::NoHost);
    }
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err(BadHandshake::NotUpgrade);
    }
    let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    if versions.next().map(HeaderValue::as_bytes) != Some(b"13") || versions.next().is_some() {
        return Err(BadHandshake::Version);
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) if is_key(key.as_bytes()) => key,
        _ => return Err(BadHandshake::Key),
    };
    HeaderValue::from_str(&tungstenite::handshake::derive_accept_key(key.as_bytes()))
        .map_err(|_| BadHandshake::Key)
}

/// Is `key` the base64 of exactly 16 bytes? That is 22 characters of the
/// base64 alphabet and `==`; the 22nd carries 2 bits of data, so its other
/// 4 bits must be zero (one of `A`, `Q`, `g`, `w`).
fn is_key(key: &[u8]) -> bool {
    let alphabet = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    key.len() == 24
        && key[..22].iter().all(alphabet)
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
        && &key[22..] == b"=="
}

impl IntoResponse for BadHandshake {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            BadHandshake::NotGet => (StatusCode::METHOD_NOT_ALLOWED, "The WebSocket handshake is a GET."),
            BadHandshake::OldHttp => (StatusCode::BAD_REQUEST, "WebSocket needs HTTP/1.1."),
            BadHandshake::NoHost => (StatusCode::BAD_REQUEST, "The handshake needs a Host header."),
            BadHandshake::NotUpgrade => {
                (StatusCode::UPGRADE_REQUIRED, "This address only speaks WebSocket (Upgrade: websocket).")
            }
            BadHandshake::Version => (StatusCode::UPGRADE_REQUIRED, "Sec-WebSocket-Version must be 13."),
            BadHandshake::Key => {
                (StatusCode::BAD_REQUEST, "Sec-WebSocket-Key must be one base64 value of 16 bytes.")
            }
        };
        let mut response = (status, message).into_response();
        let headers = response.headers_mut();
        match self {
            BadHandshake::NotGet => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            BadHandshake::NotUpgrade | BadHandshake::Version => {
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
                headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn handshake() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("chat.example.com"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        headers.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        headers
    }

    fn check(headers: &HeaderMap) -> Result<HeaderValue, BadHandshake> {
        accept(&Method::GET, Version::HTTP_11, headers)
    }

    #[test]
    fn the_rfc_example() {
        assert_eq!(check(&handshake()).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn every_rule_has_its_refusal() {
        assert_eq!(accept(&Method::POST, Version::HTTP_11, &handshake()), Err(BadHandshake::NotGet));
        assert_eq!(accept(&Method::GET, Version::HTTP_10, &handshake()), Err(BadHandshake::OldHttp));
        let mut h = handshake();
        h.remove(header::HOST);
        assert_eq!(check(&h), Err(BadHandshake::NoHost));
        let mut h = handshake();
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert_eq!(check(&h), Err(BadHandshake::NotUpgrade));
        let mut h = handshake();
        h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert_eq!(check(&h), Err(BadHandshake::Version));
        let mut h = handshake();
        h.append(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        assert_eq!(check(&h), Err(BadHandshake::Version), "two versions");
        for bad in [
            "",
            "short",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZR==",
            "dGhlIHNhbXBsZSBub25j*Q==",
            "dGhlIHNhbXBsZSBub25jZQ==x",
        ] {
            let mut h = handshake();
            h.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_str(bad).unwrap());
            assert_eq!(check(&h), Err(BadHandshake::Key), "{bad:?}");
        }
        let mut h = handshake();
        h.append(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(check(&h), Err(BadHandshake::Key), "two keys");
    }

    #[test]
    fn refusals_carry_the_headers_the_rfc_asks_for() {
        let r = BadHandshake::Version.into_response();
        assert_eq!(r.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(r.headers()[header::SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(r.headers()[header::UPGRADE], "websocket");
        let r = BadHandshake::NotGet.into_response();
        assert_eq!(r.headers()[header::ALLOW], "GET");
    }

    proptest! {
        /// Any 16 bytes, base64-encoded, are a key; nothing else of that length is.
        #[test]
        fn keys_are_exactly_base64_of_sixteen_bytes(bytes in proptest::array::uniform16(any::<u8>()), junk in "[ -~]{0,30}") {
            let key = base64_of(&bytes);
            prop_assert!(is_key(key.as_bytes()));
            let looks_valid = junk.len() == 24 && junk.ends_with("==") && decodes_to_16(&junk);
            prop_assert_eq!(is_key(junk.as_bytes()), looks_valid);
        }

        #[test]
        fn any_headers_give_an_answer_without_panicking(key in "\\PC{0,40}", version in "\\PC{0,4}") {
            let mut h = handshake();
            if let (Ok(k), Ok(v)) = (HeaderValue::from_str(&key), HeaderValue::from_str(&version)) {
                h.insert(header::SEC_WEBSOCKET_KEY, k);
                h.insert(header::SEC_WEBSOCKET_VERSION, v);
                let _ = check(&h);
            }
        }
    }

    /// Standard base64 with padding, written out for the test.
    fn base64_of(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn decodes_to_16(text: &str) -> bool {
        let body = &text.as_bytes()[..22];
        body.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
            && matches!(body[21], b'A' | b'Q' | b'g' | b'w')
    }
}
