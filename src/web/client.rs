//! Who is asking: the client's address, for the per-client limits and the logs.
//!
//! It is the TCP peer, unless that peer is a proxy `TRUSTED_PROXIES` names.
//! Then it is the right-most address in `X-Forwarded-For` that is not itself
//! a trusted proxy: each proxy appends the address it got the request from,
//! so everything left of that entry could have been written by the client.

use std::{
    convert::Infallible,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::{HeaderMap, request::Parts},
};

use crate::config::ProxyNet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[ipnet::IpNet]>);

impl TrustedProxies {
    pub fn new(proxies: &[ProxyNet]) -> Self {
        Self(proxies.iter().map(|p| p.0).collect())
    }

    /// Is `ip` one of the trusted proxies?
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, as the headers tell it (see the module's comment).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for entry in forwarded.iter().rev() {
            match entry.parse::<IpAddr>() {
                Ok(ip) if self.trusts(ip.to_canonical()) => continue,
                Ok(ip) => return ip.to_canonical(),
                // Garbage from the client or a proxy: go no further left.
                Err(_) => break,
            }
        }
        peer
    }
}

impl<S> FromRequestParts<S> for ClientAddr
where
    TrustedProxies: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        // Served with connect info, every request has its peer; one built by
        // hand (a unit test) has none.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        Ok(ClientAddr(TrustedProxies::from_ref(state).client(peer, &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(&list.iter().map(|p| p.parse().unwrap()).collect::<Vec<_>>())
    }

    fn forwarded(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static(value));
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        assert_eq!(proxies(&[]).client(ip("10.0.0.9"), &forwarded("1.2.3.4")), ip("10.0.0.9"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let p = proxies(&["127.0.0.1"]);
        assert_eq!(p.client(ip("127.0.0.1"), &forwarded("203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(p.client(ip("::ffff:127.0.0.1"), &forwarded("203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(
            p.client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1"),
            "no header: the proxy itself"
        );
    }

    #[test]
    fn what_the_client_wrote_itself_is_not_believed() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        // The client sent "X-Forwarded-For: 6.6.6.6"; its proxy chain appended
        // the real address, then a trusted inner proxy's.
        assert_eq!(
            p.client(ip("127.0.0.1"), &forwarded("6.6.6.6, 203.0.113.7, 10.1.1.1")),
            ip("203.0.113.7")
        );
        assert_eq!(p.client(ip("127.0.0.1"), &forwarded("6.6.6.6, not-an-ip")), ip("127.0.0.1"));
        assert_eq!(
            p.client(ip("192.0.2.1"), &forwarded("6.6.6.6")),
            ip("192.0.2.1"),
            "an untrusted peer's header"
        );
    }
}
