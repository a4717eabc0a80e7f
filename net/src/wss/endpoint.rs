//! Where a connection goes: host, port and request target, read once from a `wss://` URL.
//!
//! The host is kept as written: it is resolved at connect time (DNS is not on the hot path but
//! an address may change between connects) and it is the TLS server name (SNI and the name the
//! certificate must be valid for), so it never becomes an IP address silently.

use std::net::{SocketAddr, ToSocketAddrs};

use super::WssError;

/// A `wss://host[:port]/path?query` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
    target: String,
}

impl Endpoint {
    /// Reads a `wss://` URL. The port defaults to 443 and the target to `/`. IPv6 literals are
    /// written in brackets (`wss://[::1]:9443/ws`). Anything else (another scheme, user info, a
    /// fragment, an empty host, a bad port) is [`WssError::Endpoint`].
    pub fn parse(url: &str) -> Result<Self, WssError> {
        Self::parse_scheme(url, "wss://", "the scheme is not wss://")
    }

    /// [`Endpoint::parse`] for a URL of `scheme` (`https://` for the REST client: the same
    /// host, port and target rules over the same TLS).
    pub(crate) fn parse_scheme(
        url: &str,
        scheme: &str,
        wrong_scheme: &'static str,
    ) -> Result<Self, WssError> {
        let bad = |what: &'static str| WssError::Endpoint {
            url: url.to_owned(),
            what,
        };
        let rest = url.strip_prefix(scheme).ok_or_else(|| bad(wrong_scheme))?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if target.contains('#') {
            return Err(bad("a fragment is not sent to a server"));
        }
        if authority.contains('@') {
            return Err(bad("user information is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 host lacks its closing bracket"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("junk after the IPv6 host"))?,
                ),
            };
            (host, port)
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let port = match port {
            None => 443,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
        };
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_owned()
        };
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            target,
        })
    }

    /// The host as written (a name or an IP literal, without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target, path and query (`/stream?streams=btcusdt@trade`).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Resolves the host (a blocking resolver call; an IP literal needs none): every address,
    /// in the resolver's order. [`WssConnection::connect`](super::WssConnection::connect) calls
    /// it; a loop that must not wait on DNS resolves on another thread and connects with
    /// [`WssConnection::connect_to`](super::WssConnection::connect_to).
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, WssError> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|source| WssError::Dns {
                host: self.host.clone(),
                source,
            })?
            .collect();
        if addrs.is_empty() {
            return Err(WssError::NoAddress {
                host: self.host.clone(),
            });
        }
        Ok(addrs)
    }

    /// The URL again, as the WebSocket handshake request is built from it.
    pub(crate) fn url(&self) -> String {
        if self.host.contains(':') {
            format!("wss://[{}]:{}{}", self.host, self.port, self.target)
        } else {
            format!("wss://{}:{}{}", self.host, self.port, self.target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hosts_ports_and_targets() {
        let e = Endpoint::parse("wss://stream.binance.com:9443/stream?streams=btcusdt@trade")
            .expect("valid");
        assert_eq!(
            (e.host(), e.port(), e.target()),
            ("stream.binance.com", 9443, "/stream?streams=btcusdt@trade")
        );
        let e = Endpoint::parse("wss://localhost").expect("valid");
        assert_eq!((e.host(), e.port(), e.target()), ("localhost", 443, "/"));
        let e = Endpoint::parse("wss://[::1]:8443?x=1").expect("valid");
        assert_eq!((e.host(), e.port(), e.target()), ("::1", 8443, "/?x=1"));
        assert_eq!(e.url(), "wss://[::1]:8443/?x=1");
        // An IP literal resolves to itself without asking a resolver.
        assert_eq!(
            e.resolve().expect("literal"),
            vec![SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 8443))]
        );
    }

    #[test]
    fn refuses_what_it_cannot_connect_to() {
        for url in [
            "ws://localhost/",
            "https://localhost/",
            "wss://:443/",
            "wss://host:0/",
            "wss://host:99999/",
            "wss://host:x/",
            "wss://user@host/",
            "wss://host/#frag",
            "wss://[::1/",
            "wss://[::1]x/",
            "",
        ] {
            assert!(
                matches!(Endpoint::parse(url), Err(WssError::Endpoint { .. })),
                "{url}"
            );
        }
    }
}
