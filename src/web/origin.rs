//! Cross-origin protection: the algorithm of Go's `CrossOriginProtection`
//! (also tower-http's CSRF layer). Browsers always label a request with
//! `Sec-Fetch-Site` or `Origin`; clients with neither (curl, tests) cannot
//! carry a victim's cookies across sites, so they pass.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use url::Url;

use super::error::AppError;

/// The scheme://host:port users reach us at (from `PUBLIC_URL`). The guard
/// middleware gets a clone per request, hence the `Arc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin(std::sync::Arc<str>);

impl PublicOrigin {
    pub fn of(url: &Url) -> Self {
        Self(url.origin().ascii_serialization().into())
    }

    /// "scheme://host[:port]", for links that leave the site (invites).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Is `origin` (an `Origin` header value) us? Either the configured
    /// public origin, or, as in Go, the origin of the `Host` the request was
    /// sent to; but with our own scheme: scheme, host and port must all be
    /// ours (Go compares the host alone, so `http://` passed for `https://`).
    fn is_ours(&self, origin: &str, headers: &HeaderMap) -> bool {
        let Some(origin) = origin_of(origin) else { return false };
        if origin == *self.0 {
            return true;
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        // A Host that is more than host[:port] would parse as some other URL.
        let Some(host) = host.filter(|h| !h.is_empty() && !h.contains(['/', '\\', '@', '?', '#'])) else {
            return false;
        };
        origin_of(&format!("{}://{host}", self.scheme())).is_some_and(|ours| ours == origin)
    }

    fn scheme(&self) -> &str {
        self.0.split_once("://").map_or("", |(scheme, _)| scheme)
    }

    /// May a request with this method and these headers change state?
    pub fn allows(&self, method: &Method, headers: &HeaderMap) -> bool {
        matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || self.is_same_origin(headers)
    }

    /// Did the request come from our own pages (or from no page at all: a
    /// typed address, curl)? The rule every state-changing request passes,
    /// including the one GET that changes state, `/logout`.
    pub fn is_same_origin(&self, headers: &HeaderMap) -> bool {
        match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
            Some(b"same-origin" | b"none") => true,
            Some(_) => false,
            None => self.origin_allowed(headers),
        }
    }

    /// The WebSocket upgrade is a GET, so it is judged by `Origin` alone:
    /// browsers always send it on WebSocket handshakes.
    pub fn allows_upgrade(&self, headers: &HeaderMap) -> bool {
        self.origin_allowed(headers)
    }

    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        match headers.get(header::ORIGIN) {
            None => true,
            Some(value) => value.to_str().is_ok_and(|origin| self.is_ours(origin, headers)),
        }
    }
}

/// "scheme://host[:port]" of a URL, as browsers write `Origin` (lowercase,
/// no default port); `None` for an opaque origin (`null`, `data:`) or no URL.
fn origin_of(url: &str) -> Option<String> {
    let origin = Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// Middleware: refuse state-changing cross-origin requests with 403.
pub async fn guard(State(origin): State<PublicOrigin>, request: Request, next: Next) -> Response {
    if origin.allows(request.method(), request.headers()) {
        next.run(request).await
    } else {
        AppError::CrossOrigin.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn origin() -> PublicOrigin {
        PublicOrigin::of(&Url::parse("https://chat.example.com/").unwrap())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn safe_methods_always_pass() {
        let h = headers(&[("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")]);
        assert!(origin().allows(&Method::GET, &h));
    }

    #[test]
    fn fetch_metadata_decides_when_present() {
        let o = origin();
        assert!(o.allows(&Method::POST, &headers(&[("sec-fetch-site", "same-origin")])));
        assert!(o.allows(&Method::POST, &headers(&[("sec-fetch-site", "none")])));
        assert!(!o.allows(&Method::POST, &headers(&[("sec-fetch-site", "same-site")])));
        assert!(!o.allows(&Method::POST, &headers(&[("sec-fetch-site", "cross-site")])));
        // Sec-Fetch-Site wins over a matching Origin.
        let h = headers(&[("sec-fetch-site", "cross-site"), ("origin", "https://chat.example.com")]);
        assert!(!o.allows(&Method::POST, &h));
    }

    #[test]
    fn origin_decides_for_older_browsers() {
        let o = origin();
        assert!(o.allows(&Method::POST, &headers(&[])));
        assert!(o.allows(&Method::POST, &headers(&[("origin", "https://chat.example.com")])));
        assert!(!o.allows(&Method::POST, &headers(&[("origin", "https://evil.example")])));
        assert!(!o.allows(&Method::POST, &headers(&[("origin", "null")])));
        let by_host = headers(&[("origin", "https://10.1.2.3:3000"), ("host", "10.1.2.3:3000")]);
        assert!(o.allows(&Method::POST, &by_host));
    }

    #[test]
    fn scheme_host_and_port_must_all_be_ours() {
        let o = origin();
        let post = |pairs: &[(&'static str, &'static str)]| o.allows(&Method::POST, &headers(pairs));
        assert!(!post(&[("origin", "http://chat.example.com")]), "our host over another scheme");
        assert!(!post(&[("origin", "https://chat.example.com:8443")]), "another port");
        assert!(post(&[("origin", "https://chat.example.com:443")]), "the default port written out");
        assert!(
            !post(&[("origin", "http://10.1.2.3:3000"), ("host", "10.1.2.3:3000")]),
            "the Host, but http"
        );
        assert!(!post(&[("origin", "https://10.1.2.3:3000"), ("host", "10.1.2.3:3001")]));
        assert!(post(&[("origin", "https://10.1.2.3"), ("host", "10.1.2.3:443")]));
        assert!(!post(&[("origin", "https://evil.example"), ("host", "x@evil.example")]), "not a host");
        let plain = PublicOrigin::of(&Url::parse("http://127.0.0.1:3000/").unwrap());
        let h = headers(&[("origin", "https://localhost:3000"), ("host", "localhost:3000")]);
        assert!(!plain.allows(&Method::POST, &h), "https is not the http we serve");
        let h = headers(&[("origin", "http://localhost:3000"), ("host", "localhost:3000")]);
        assert!(plain.allows(&Method::POST, &h));
    }

    #[test]
    fn a_link_from_another_site_is_not_ours() {
        let o = origin();
        assert!(o.is_same_origin(&headers(&[("sec-fetch-site", "same-origin")])), "our own a#logout");
        assert!(o.is_same_origin(&headers(&[("sec-fetch-site", "none")])), "a typed address");
        assert!(!o.is_same_origin(&headers(&[("sec-fetch-site", "cross-site")])), "an <img> elsewhere");
        assert!(!o.is_same_origin(&headers(&[("origin", "https://evil.example")])));
        assert!(o.is_same_origin(&headers(&[])), "curl");
    }

    #[test]
    fn upgrades_need_our_origin() {
        let o = origin();
        assert!(o.allows_upgrade(&headers(&[])));
        assert!(o.allows_upgrade(&headers(&[("origin", "https://chat.example.com")])));
        assert!(!o.allows_upgrade(&headers(&[("origin", "https://evil.example")])));
    }
}
