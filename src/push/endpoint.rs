//! Where pushes may be sent. A subscription's endpoint is a URL the browser
//! hands us, so it could name anything the server can reach: its own
//! network, a cloud's metadata service. So (unless `PUSH_ALLOW_INSECURE`):
//! an endpoint must be https, and its host must not be, nor resolve to, a
//! loopback, private, link-local, multicast or otherwise unroutable address
//! (an IPv4-mapped IPv6 address counts as its IPv4 address). An IP literal
//! is judged at once; a name when it is subscribed (if it resolves then)
//! and again at every send, by the HTTP client's own resolver
//! ([`GuardedResolver`]), so the address checked is the address connected
//! to. Redirects are never followed (see `sender`).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use url::{Host, Url};

/// The longest endpoint accepted (browsers' are a few hundred bytes).
const MAX_LEN: usize = 2048;
/// How long a subscribe waits for a name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadEndpoint {
    #[error("The endpoint is not a push service's URL.")]
    NotUrl,
    #[error("The endpoint must be an https URL.")]
    NotHttps,
    #[error("The endpoint's host is a loopback, private, link-local or multicast address.")]
    NotPublic,
}

/// The rules, with `PUSH_ALLOW_INSECURE` or without.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    pub allow_insecure: bool,
}

impl Endpoints {
    /// At subscribe: the URL, its scheme, its host as written and, for a
    /// name that resolves now, every address it resolves to.
    pub async fn check(&self, endpoint: &str) -> Result<Url, BadEndpoint> {
        let url = self.check_written(endpoint)?;
        if self.allow_insecure {
            return Ok(url);
        }
        if let Some(Host::Domain(name)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            // A name that does not resolve now is judged when it is sent to.
            if let Ok(Ok(addrs)) =
                tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await
            {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if addrs.iter().any(|addr| !is_public(addr.ip())) {
                    return Err(BadEndpoint::NotPublic);
                }
            }
        }
        Ok(url)
    }

    /// What can be judged without the network: the URL, its scheme, and a
    /// host written as an address (the resolver never sees those).
    pub fn check_written(&self, endpoint: &str) -> Result<Url, BadEndpoint> {
        if endpoint.len() > MAX_LEN {
            return Err(BadEndpoint::NotUrl);
        }
        let url = Url::parse(endpoint).map_err(|_| BadEndpoint::NotUrl)?;
        let plain = match url.scheme() {
            "https" => false,
            "http" => true,
            _ => return Err(BadEndpoint::NotUrl),
        };
        if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
            return Err(BadEndpoint::NotUrl);
        }
        if self.allow_insecure {
            return Ok(url);
        }
        if plain {
            return Err(BadEndpoint::NotHttps);
        }
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        match literal {
            Some(ip) if !is_public(ip) => Err(BadEndpoint::NotPublic),
            _ => Ok(url),
        }
    }
}

/// May the server send to this address? Not to loopback, private (RFC 1918,
/// unique local), link-local, multicast, unspecified, broadcast, shared
/// (carrier NAT), documentation, benchmarking or reserved ones; an IPv6
/// address carrying an IPv4 one (mapped, compatible, NAT64) is judged by it.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (b & 0xc0) == 64) // 100.64.0.0/10, shared address space
        || (a == 198 && (b & 0xfe) == 18) // 198.18.0.0/15, benchmarking
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // 192.0.0.0/24, protocol assignments
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local, deprecated
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)) // documentation
}

/// The IPv4 address an IPv6 one carries: mapped (::ffff:a.b.c.d),
/// compatible (::a.b.c.d, deprecated) or NAT64 (64:ff9b::a.b.c.d).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let compatible = s[..6].iter().all(|x| *x == 0) && !ip.is_loopback() && !ip.is_unspecified();
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0);
    (compatible || nat64).then_some(tail)
}

/// The push client's resolver: a name is resolved, and refused whole if any
/// of its addresses may not be sent to, so the connection goes only to an
/// address that was checked.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver;

/// A name resolved to an address pushes may not go to.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to an address pushes may not be sent to")]
pub struct Refused(pub String);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|addr| !is_public(addr.ip())) {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_may_be_sent_to() {
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for not in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "198.18.0.1",
            "192.0.2.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(not.parse().unwrap()), "{not}");
        }
    }

    #[tokio::test]
    async fn endpoints_must_be_https_and_public() {
        let strict = Endpoints { allow_insecure: false };
        assert!(
            strict.check("https://push.example.invalid/send/1").await.is_ok(),
            "unresolved: judged at send"
        );
        assert!(strict.check("https://8.8.8.8/x").await.is_ok());
        for (endpoint, why) in [
            ("http://8.8.8.8/x", BadEndpoint::NotHttps),
            ("https://127.0.0.1/x", BadEndpoint::NotPublic),
            ("https://[::1]:8443/x", BadEndpoint::NotPublic),
            ("https://[::ffff:192.168.0.1]/x", BadEndpoint::NotPublic),
            ("https://10.0.0.8/x", BadEndpoint::NotPublic),
            ("https://localhost/x", BadEndpoint::NotPublic),
            ("https://0x7f000001/x", BadEndpoint::NotPublic),
            ("ftp://8.8.8.8/x", BadEndpoint::NotUrl),
            ("https://user:pw@8.8.8.8/x", BadEndpoint::NotUrl),
            ("not a url", BadEndpoint::NotUrl),
        ] {
            assert_eq!(strict.check(endpoint).await.unwrap_err(), why, "{endpoint}");
        }
        let loose = Endpoints { allow_insecure: true };
        assert!(loose.check("http://127.0.0.1:9/x").await.is_ok());
        assert_eq!(loose.check("ftp://127.0.0.1/x").await.unwrap_err(), BadEndpoint::NotUrl);
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_private_addresses() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = GuardedResolver.resolve(name).await.err().expect("localhost is refused");
        assert!(err.to_string().contains("localhost"), "{err}");
    }
}
