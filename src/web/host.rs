//! Which host names the server answers for. With `PUBLIC_URL` set, a request
//! whose `Host` is neither its host[:port] nor one of `ALLOWED_HOSTS` is
//! answered 421 before anything else reads it: a page of another site whose
//! name an attacker pointed at this server's private address (DNS
//! rebinding) reaches nothing, not even the registration of the first
//! admin. `/healthz` answers any host, for load balancers that probe by
//! address. Without `PUBLIC_URL` there is no name to hold requests to.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use url::Url;

use super::error::AppError;
use crate::config::HostPort;

/// The hosts requests may name; `None`: any.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(Option<Arc<Hosts>>);

#[derive(Debug)]
struct Hosts {
    /// The port a `Host` without one means (the public URL's scheme's).
    default_port: u16,
    /// The public URL's host and port (always with a port), then `ALLOWED_HOSTS`.
    names: Vec<HostPort>,
}

impl AllowedHosts {
    /// With no configured public URL, any host; else its host and port, and `more`.
    pub fn new(public_url: Option<&Url>, more: &[HostPort]) -> Self {
        let Some(url) = public_url else { return Self(None) };
        // The public URL is http or https (checked at start).
        let default_port = if url.scheme() == "https" { 443 } else { 80 };
        let port = Some(url.port().unwrap_or(default_port));
        let public = url.host().map(|host| HostPort { host: host.to_string(), port });
        let names = public.into_iter().chain(more.iter().cloned()).collect();
        Self(Some(Arc::new(Hosts { default_port, names })))
    }

    /// May a request carry this `Host` (`None`: it had none)?
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(hosts) = &self.0 else { return true };
        let Some(asked) = host.and_then(HostPort::parse) else { return false };
        let port = asked.port.unwrap_or(hosts.default_port);
        hosts.names.iter().any(|name| name.host == asked.host && name.port.is_none_or(|p| p == port))
    }
}

/// Middleware: 421 for a request to a host that is not ours.
pub async fn guard(State(hosts): State<AllowedHosts>, request: Request, next: Next) -> Response {
    // An absolute URI (`GET http://host/ HTTP/1.1`) names the host itself,
    // and then `Host` is to be ignored (RFC 9112, 3.2.2).
    let host = match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request.headers().get(header::HOST).and_then(|h| h.to_str().ok()),
    };
    if request.uri().path() == "/healthz" || hosts.allows(host) {
        next.run(request).await
    } else {
        tracing::info!(host, "a request for another host refused");
        AppError::WrongHost.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(public: &str, more: &[&str]) -> AllowedHosts {
        let more: Vec<HostPort> = more.iter().map(|h| h.parse().unwrap()).collect();
        AllowedHosts::new(Some(&Url::parse(public).unwrap()), &more)
    }

    #[test]
    fn without_a_public_url_any_host_is_fine() {
        let any = AllowedHosts::new(None, &[]);
        assert!(any.allows(Some("whatever.example:1234")));
        assert!(any.allows(None));
    }

    #[test]
    fn the_public_host_and_port() {
        let h = hosts("https://chat.example.com", &[]);
        assert!(h.allows(Some("chat.example.com")));
        assert!(h.allows(Some("Chat.Example.COM:443")));
        assert!(!h.allows(Some("chat.example.com:80")), "another port");
        assert!(!h.allows(Some("evil.example")));
        assert!(!h.allows(Some("chat.example.com.evil.example")));
        assert!(!h.allows(Some("127.0.0.1")));
        assert!(!h.allows(None), "no Host at all");
        assert!(!h.allows(Some("chat.example.com@evil.example")));
        let h = hosts("http://127.0.0.1:3000", &[]);
        assert!(h.allows(Some("127.0.0.1:3000")));
        assert!(!h.allows(Some("127.0.0.1")), "port 80");
    }

    #[test]
    fn allowed_hosts_with_or_without_a_port() {
        let h = hosts("https://chat.example.com", &["alt.example:8443", "intranet", "[::1]:3000"]);
        assert!(h.allows(Some("alt.example:8443")));
        assert!(!h.allows(Some("alt.example")), "443 is not 8443");
        assert!(h.allows(Some("intranet")) && h.allows(Some("INTRANET:3000")), "any port");
        assert!(h.allows(Some("[::1]:3000")));
        assert!(!h.allows(Some("[::1]")));
    }
}
