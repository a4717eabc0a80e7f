//! TLS for the simulator's listener: the connection type sessions run over, and a self-signed
//! identity for loopback tests.
//!
//! The live feed path connects with `wss://`; serving the same bytes over real TLS on loopback
//! tests that path end to end without the exchange. The crypto provider is chosen explicitly
//! (`ring`), so the server works whatever rustls features other crates enable.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::ExchangeSimError;

/// A self-signed server identity: the rustls config to serve with, and the certificate a
/// client must trust.
#[derive(Debug, Clone)]
pub struct SelfSignedTls {
    /// What [`FeedServer::start_tls`](crate::FeedServer::start_tls) serves with.
    pub server_config: Arc<ServerConfig>,
    /// The certificate (DER), for a client's root store.
    pub certificate: CertificateDer<'static>,
    /// The same certificate as PEM, for other clients (`curl --cacert`, scripts).
    pub certificate_pem: String,
}

impl SelfSignedTls {
    /// A fresh certificate for `names` (`localhost`, `127.0.0.1`), TLS 1.2 and 1.3.
    pub fn generate(names: &[&str]) -> Result<Self, ExchangeSimError> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| ExchangeSimError::Tls(e.to_string()))?;
        let certificate = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let server_config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .and_then(|b| {
                    b.with_no_client_auth()
                        .with_single_cert(vec![certificate.clone()], key)
                })
                .map_err(|e| ExchangeSimError::Tls(e.to_string()))?;
        Ok(SelfSignedTls {
            server_config: Arc::new(server_config),
            certificate,
            certificate_pem: certified.cert.pem(),
        })
    }
}

/// One accepted connection, plaintext or TLS.
#[derive(Debug)]
pub(crate) enum Conn {
    /// `ws://` and `http://`.
    Plain(TcpStream),
    /// `wss://` and `https://`; the handshake runs on first use.
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Conn {
    /// Wraps an accepted socket; TLS when `tls` is set.
    pub fn new(tcp: TcpStream, tls: Option<&Arc<ServerConfig>>) -> io::Result<Conn> {
        match tls {
            None => Ok(Conn::Plain(tcp)),
            Some(config) => {
                let session =
                    ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
                Ok(Conn::Tls(Box::new(StreamOwned::new(session, tcp))))
            }
        }
    }

    /// The socket under it, for timeouts and blocking mode.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(tls) => tls.get_ref(),
        }
    }

    /// Ends the TLS session cleanly (`close_notify`), so the peer's read ends without an
    /// error; nothing for plaintext.
    pub fn close_notify(&mut self) {
        if let Conn::Tls(tls) = self {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(tcp) => tcp.read(buf),
            Conn::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(tcp) => tcp.write(buf),
            Conn::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(tcp) => tcp.flush(),
            Conn::Tls(tls) => tls.flush(),
        }
    }
}
