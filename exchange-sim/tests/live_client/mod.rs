//! What the live-market tests share: the live exchange serving a recording over TLS on
//! loopback, and a plain rustls client config that trusts the exchange's own certificate.

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;

use pinion_exchange_sim::{LiveConfig, LiveExchange, SelfSignedTls};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::WebSocket;

/// A client's TLS stream to the exchange.
pub type Tls = StreamOwned<ClientConnection, TcpStream>;
/// A client's WebSocket session with the exchange.
pub type Ws = WebSocket<Tls>;

/// The live exchange and a client config that trusts it.
pub struct Sim {
    pub exchange: LiveExchange,
    pub client: Arc<ClientConfig>,
}

/// The live exchange on `config`, serving the recording at `path` on a loopback port.
pub fn start(path: PathBuf, config: LiveConfig) -> Sim {
    let tls = SelfSignedTls::generate(&["localhost", "127.0.0.1"]).expect("certificate");
    let exchange = LiveExchange::start(
        "127.0.0.1:0".parse().expect("addr"),
        config,
        Some(Arc::clone(&tls.server_config)),
        move || pinion_feed::source::open(&path),
    )
    .expect("start the live exchange");
    let mut roots = RootCertStore::empty();
    roots
        .add(tls.certificate.clone())
        .expect("trust the certificate");
    let client =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    Sim {
        exchange,
        client: Arc::new(client),
    }
}
