//! Why a connection failed, by phase: where it was going, DNS, TCP, TLS, the WebSocket
//! handshake, or the WebSocket protocol once open. A certificate the trust store does not
//! vouch for is its own variant, so a caller can never mistake it for a network fault to retry
//! around.

use std::io;
use std::net::SocketAddr;

/// Why a WebSocket-over-TLS connection could not be made or kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WssError {
    /// The URL is not a `wss://` endpoint this client can connect to.
    #[error("endpoint {url:?}: {what}")]
    Endpoint {
        /// The URL as given.
        url: String,
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
    Tcp {
        /// The last address tried.
        addr: SocketAddr,
        /// Why it failed.
        source: io::Error,
    },
    /// `TCP_NODELAY` could not be set, or reads back as off after setting it.
    #[error("TCP_NODELAY is not on for the socket to {addr}{}", why.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    NoDelay {
        /// The peer.
        addr: SocketAddr,
        /// The socket error, when there was one (none: it read back as off).
        why: Option<io::Error>,
    },
    /// The host name is not a valid TLS server name.
    #[error("{host} is not a valid TLS server name")]
    ServerName {
        /// The host name.
        host: String,
    },
    /// The server's certificate is not trusted by the configured roots, or not valid for the
    /// host name. Never retried around: the roots or the endpoint are wrong, or someone is in
    /// the middle.
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
    /// TLS would not take a whole prepared frame (its send buffer is full: the peer stopped
    /// reading); the connection was ended, since half a frame cannot be taken back.
    #[error("send buffer full: the peer is not reading")]
    SendBufferFull,
    /// The server answered the WebSocket upgrade with another status than 101.
    #[error("websocket upgrade refused with HTTP {status}")]
    HandshakeStatus {
        /// The HTTP status code.
        status: u16,
    },
    /// The WebSocket upgrade failed otherwise (a malformed answer, a wrong accept key).
    #[error("websocket handshake: {0}")]
    Handshake(#[source] tungstenite::Error),
    /// The peer broke the WebSocket protocol, or a message exceeded the configured limits.
    #[error("websocket protocol: {0}")]
    Protocol(#[source] tungstenite::Error),
    /// The peer closed the TCP connection (or reset it) without a WebSocket close.
    #[error("connection ended without a websocket close")]
    Reset,
    /// A socket operation failed.
    #[error("socket: {0}")]
    Io(#[source] io::Error),
    /// A message was to be sent before the connection was open, or after it closed.
    #[error("the connection is not open")]
    NotOpen,
}
