//! The one rustls client config every connection is made from.
//!
//! Built once at start-up and shared (`Arc`): the crypto provider is `ring`, named explicitly so
//! the choice does not depend on which rustls features other crates enable; TLS 1.2 and 1.3;
//! the server's certificate is verified against the caller's roots and the endpoint's host name
//! (no way to turn that off: only [`client_config`] makes a [`TlsClientConfig`]); SNI is sent.
//! Session resumption is rustls's default, an in-memory store of tickets per server name, which
//! lives in the config: a reconnect made from the same config (or a clone) resumes the session
//! (an abbreviated handshake) when the server agrees.

use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

use super::WssError;

/// The TLS client config connections are made from. Only [`client_config`] makes one, so no
/// connection of this module can run with certificate verification turned off. Clones share
/// the config, and with it the session store.
#[derive(Debug, Clone)]
pub struct TlsClientConfig(Arc<ClientConfig>);

impl TlsClientConfig {
    /// The rustls config, for a new connection.
    pub(crate) fn rustls(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.0)
    }
}

/// The client config: `roots` are the certificates trusted as issuers (the operating system's
/// or `webpki-roots`' for an exchange; the simulator's self-signed certificate in tests).
pub fn client_config(roots: RootCertStore) -> Result<TlsClientConfig, WssError> {
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|error| WssError::Tls {
                host: String::new(),
                error,
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
    debug_assert!(config.enable_sni);
    Ok(TlsClientConfig(Arc::new(config)))
}
