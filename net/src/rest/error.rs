//! Why a REST request failed, by what was seen: the base URL or target, DNS, TCP, TLS (an
//! untrusted certificate apart), a timeout and in which phase, or the response itself
//! ([`ReadError`]: bad head, body too large, bad chunk, connection closed mid-body).
//!
//! No variant carries the request's query string: it may hold signed parameters one day, and
//! errors end up in logs.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::ReadError;

/// Where in a request a timeout or socket error struck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The TCP connect.
    Connect,
    /// The TLS handshake.
    Handshake,
    /// Writing the request.
    Write,
    /// Reading the response.
    Read,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::Handshake => "tls handshake",
            Phase::Write => "writing the request",
            Phase::Read => "reading the response",
        })
    }
}

/// Why a REST request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestError {
    /// The base URL is not `https://host[:port]`.
    #[error("base url {url:?}: {what}")]
    BaseUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        what: &'static str,
    },
    /// The path and query cannot be sent as a request target (the target itself is not quoted).
    #[error("request target: {what}")]
    Target {
        /// What is wrong with it.
        what: &'static str,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Dns {
        /// The host name.
        host: String,
        /// The resolver's answer.
        source: io::Error,
    },
    /// The host name resolved to no address.
    #[error("{host} resolves to no address")]
    NoAddress {
        /// The host name.
        host: String,
    },
    /// The TCP connection to every resolved address failed; the last failure is given.
    #[error("tcp connect to {addr}: {source}")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// Why it failed.
        source: io::Error,
    },
    /// `TCP_NODELAY` does not read back as on.
    #[error("TCP_NODELAY is not on for the socket to {addr}: {report}")]
    NoDelay {
        /// The peer.
        addr: SocketAddr,
        /// What the socket reported.
        report: crate::sockopt::SocketReport,
    },
    /// The host name is not a valid TLS server name.
    #[error("{host} is not a valid TLS server name")]
    ServerName {
        /// The host name.
        host: String,
    },
    /// The server's certificate is not trusted by the configured roots, or not valid for the
    /// host name. Never retried around.
    #[error("certificate of {host} not trusted: {error}")]
    CertificateNotTrusted {
        /// The host name the certificate was checked against.
        host: String,
        /// What rustls found wrong with it.
        error: rustls::CertificateError,
    },
    /// The TLS layer failed (handshake refused, bad record, alert from the peer).
    #[error("tls with {host}: {error}")]
    Tls {
        /// The host name.
        host: String,
        /// The rustls error.
        error: rustls::Error,
    },
    /// Nothing came (or nothing could be written) within the configured time.
    #[error("timed out {phase} after {after:?}")]
    Timeout {
        /// Where.
        phase: Phase,
        /// The time allowed.
        after: Duration,
    },
    /// The response could not be read: a bad head, a body over the limit, broken chunks, or
    /// the connection closed inside it.
    #[error("response: {0}")]
    Response(#[from] ReadError),
    /// The connection ended at TCP level without TLS `close_notify` where only the end of the
    /// connection delimits the body: it may have been cut short.
    #[error("connection ended without tls close_notify inside a body delimited by the close")]
    Truncated,
    /// A socket operation failed otherwise.
    #[error("socket error {phase}: {source}")]
    Io {
        /// Where.
        phase: Phase,
        /// The error.
        source: io::Error,
    },
}
