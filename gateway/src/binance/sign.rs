//! Request signing for Binance Spot: HMAC-SHA256 (hex) and Ed25519 (base64).
//!
//! What is signed is defined by the exchange, per API:
//!
//! * **WebSocket API**: every `params` entry except `signature`, `apiKey` included, sorted by
//!   name, written `name=value` and joined with `&`; values as raw UTF-8, no percent-encoding
//!   ([`ws_payload`]).
//! * **REST**: the query string followed by the body, exactly as sent, no separator, no
//!   sorting; non-ASCII percent-encoded *before* signing (the caller builds that text).
//!
//! Both primitives come from `ring`, which rustls already builds: one crypto stack in the
//! binary, audited, with constant-time HMAC. Signing writes into a caller's fixed buffer
//! ([`SignatureBuf`]) and never allocates.
//!
//! **Secrets.** [`Credentials`] reads the API key and the secret from environment variables
//! named in config. Nothing here prints a secret: `Debug` and `Display` show `<redacted>`, and
//! no error quotes secret text (a bad byte in a key is reported by its offset, never by value).

use std::fmt;

use ring::hmac;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// Length of an HMAC-SHA256 signature in lower-case hex.
pub const HMAC_HEX_LEN: usize = 64;
/// Length of an Ed25519 signature (64 bytes) in padded base64.
pub const ED25519_B64_LEN: usize = 88;
/// Large enough for either signature's text.
pub type SignatureBuf = [u8; ED25519_B64_LEN];

/// Why a key or credential could not be loaded. Never carries secret text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The environment variable named in config is not set.
    #[error("environment variable {var} is not set")]
    MissingEnv {
        /// The variable's name.
        var: String,
    },
    /// The environment variable is set but is not valid Unicode.
    #[error("environment variable {var} is not valid UTF-8")]
    NotUnicode {
        /// The variable's name.
        var: String,
    },
    /// The environment variable is set but empty.
    #[error("environment variable {var} is empty")]
    Empty {
        /// The variable's name.
        var: String,
    },
    /// The Ed25519 key text is not PEM (`-----BEGIN PRIVATE KEY-----` … `-----END …`).
    #[error("Ed25519 key is not a PEM `PRIVATE KEY` block: {what}")]
    NotPem {
        /// What was missing or wrong.
        what: &'static str,
    },
    /// The PEM body is not base64.
    #[error("Ed25519 key: invalid base64 at offset {offset} of the PEM body")]
    BadBase64 {
        /// Byte offset into the body (the byte itself is not shown: it is part of the key).
        offset: usize,
    },
    /// The decoded key was refused by the Ed25519 PKCS#8 parser.
    #[error("Ed25519 key rejected: {reason} ({der_len} bytes of DER)")]
    KeyRejected {
        /// ring's reason (`InvalidEncoding`, `WrongAlgorithm`, …).
        reason: String,
        /// Length of the decoded DER.
        der_len: usize,
    },
    /// An API key that cannot go into a request unescaped.
    #[error("API key has {len} bytes with a byte outside [A-Za-z0-9] at offset {offset}")]
    BadApiKey {
        /// Its length.
        len: usize,
        /// Offset of the first bad byte.
        offset: usize,
    },
}

/// The kind of API key, which decides how requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// HMAC-SHA256 with a shared secret; signature in hex. Works per request only.
    Hmac,
    /// Ed25519 with a private key (PKCS#8 PEM); signature in base64. Needed for
    /// `session.logon`.
    Ed25519,
}

/// Where the credentials come from: the names of two environment variables (never the values).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// The key type.
    pub kind: KeyKind,
    /// The variable holding the API key.
    pub api_key_env: String,
    /// The variable holding the secret: the HMAC secret key, or the Ed25519 private key as
    /// PKCS#8 PEM text.
    pub secret_env: String,
}

/// Signs payloads with one key. Never prints the key.
pub enum Signer {
    /// HMAC-SHA256.
    Hmac(hmac::Key),
    /// Ed25519.
    Ed25519(Ed25519KeyPair),
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::Hmac(_) => f.write_str("Signer::Hmac(<redacted>)"),
            Signer::Ed25519(_) => f.write_str("Signer::Ed25519(<redacted>)"),
        }
    }
}

impl Signer {
    /// An HMAC-SHA256 signer with `secret` (its bytes as given: Binance secrets are ASCII).
    pub fn hmac(secret: &[u8]) -> Self {
        Signer::Hmac(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// An Ed25519 signer from PKCS#8 PEM text as `openssl genpkey -algorithm ed25519` writes it
    /// (PKCS#8 v1, no public key) or with the public key (v2).
    ///
    /// ring's strict `from_pkcs8` accepts only v2 documents; OpenSSL writes v1, so this uses
    /// `from_pkcs8_maybe_unchecked`, which accepts both and, for v2, still checks the public key
    /// against the private one.
    pub fn ed25519_pem(pem: &str) -> Result<Self, SignError> {
        let der = pem_private_key_der(pem)?;
        Self::ed25519_der(&der)
    }

    /// An Ed25519 signer from PKCS#8 DER (v1 or v2).
    pub fn ed25519_der(der: &[u8]) -> Result<Self, SignError> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(Signer::Ed25519)
            .map_err(|e| SignError::KeyRejected {
                reason: e.to_string(),
                der_len: der.len(),
            })
    }

    /// The key kind.
    pub fn kind(&self) -> KeyKind {
        match self {
            Signer::Hmac(_) => KeyKind::Hmac,
            Signer::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// Length of this signer's signature text.
    pub const fn signature_len(&self) -> usize {
        match self {
            Signer::Hmac(_) => HMAC_HEX_LEN,
            Signer::Ed25519(_) => ED25519_B64_LEN,
        }
    }

    /// The Ed25519 public key (32 bytes), to register with the exchange; `None` for HMAC.
    pub fn ed25519_public_key(&self) -> Option<&[u8]> {
        match self {
            Signer::Hmac(_) => None,
            Signer::Ed25519(k) => Some(k.public_key().as_ref()),
        }
    }

    /// Signs `payload` into `out`; returns the signature text (hex for HMAC, base64 for
    /// Ed25519), a prefix of `out`. Does not allocate.
    pub fn sign<'a>(&self, payload: &[u8], out: &'a mut SignatureBuf) -> &'a [u8] {
        match self {
            Signer::Hmac(key) => {
                let tag = hmac::sign(key, payload);
                let n = write_hex(tag.as_ref(), out);
                &out[..n]
            }
            Signer::Ed25519(key) => {
                let sig = key.sign(payload);
                let n = write_base64(sig.as_ref(), out);
                &out[..n]
            }
        }
    }
}

/// The API key and its signer, loaded once at start-up.
pub struct Credentials {
    api_key: String,
    signer: Signer,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &ApiKeyHint(&self.api_key))
            .field("kind", &self.signer.kind())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} key {} (secret <redacted>)",
            self.signer.kind(),
            ApiKeyHint(&self.api_key)
        )
    }
}

/// The first four characters of an API key, enough to tell keys apart in a log.
struct ApiKeyHint<'a>(&'a str);

impl fmt::Debug for ApiKeyHint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ApiKeyHint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = self.0.get(..4).unwrap_or("");
        write!(f, "{head}…")
    }
}

impl Credentials {
    /// Reads the API key and the secret from the environment variables `config` names.
    pub fn from_env(config: &CredentialsConfig) -> Result<Self, SignError> {
        let api_key = read_env(&config.api_key_env)?;
        let secret = read_env(&config.secret_env)?;
        Self::new(config.kind, &api_key, &secret)
    }

    /// Credentials from values (tests, or a caller with its own secret store).
    pub fn new(kind: KeyKind, api_key: &str, secret: &str) -> Result<Self, SignError> {
        if let Some(offset) = api_key.bytes().position(|b| !b.is_ascii_alphanumeric()) {
            return Err(SignError::BadApiKey {
                len: api_key.len(),
                offset,
            });
        }
        if api_key.is_empty() {
            return Err(SignError::BadApiKey { len: 0, offset: 0 });
        }
        let signer = match kind {
            KeyKind::Hmac => Signer::hmac(secret.as_bytes()),
            KeyKind::Ed25519 => Signer::ed25519_pem(secret)?,
        };
        Ok(Self {
            api_key: api_key.to_owned(),
            signer,
        })
    }

    /// The API key (not secret: it is sent with every signed request).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The signer.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}

fn read_env(var: &str) -> Result<String, SignError> {
    match std::env::var(var) {
        Ok(v) if v.is_empty() => Err(SignError::Empty {
            var: var.to_owned(),
        }),
        Ok(v) => Ok(v),
        Err(std::env::VarError::NotPresent) => Err(SignError::MissingEnv {
            var: var.to_owned(),
        }),
        Err(std::env::VarError::NotUnicode(_)) => Err(SignError::NotUnicode {
            var: var.to_owned(),
        }),
    }
}

/// Writes the WS API signature payload of `params` into `out` (cleared first): sorted by name,
/// `name=value` joined by `&`, raw UTF-8. `params` must not contain `signature`. Sorting is
/// done in place on the caller's slice.
pub fn ws_payload(params: &mut [(&str, &str)], out: &mut Vec<u8>) {
    params.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.clear();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes` into `out`; returns the length written. `out` must hold
/// `2 * bytes.len()` (callers pass 32 bytes into 88).
fn write_hex(bytes: &[u8], out: &mut [u8]) -> usize {
    let mut n = 0;
    for (&b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
        n += 2;
    }
    n
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard padded base64 of `bytes` into `out`; returns the length written, or stops early
/// when `out` is full.
pub(crate) fn write_base64(bytes: &[u8], out: &mut [u8]) -> usize {
    let mut n = 0;
    for (chunk, quad) in bytes.chunks(3).zip(out.chunks_exact_mut(4)) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        quad[0] = B64[usize::from(b0 >> 2)];
        quad[1] = B64[usize::from(((b0 & 0x03) << 4) | (b1 >> 4))];
        quad[2] = if chunk.len() > 1 {
            B64[usize::from(((b1 & 0x0f) << 2) | (b2 >> 6))]
        } else {
            b'='
        };
        quad[3] = if chunk.len() > 2 {
            B64[usize::from(b2 & 0x3f)]
        } else {
            b'='
        };
        n += 4;
    }
    n
}

/// Decodes standard padded base64, skipping ASCII whitespace. Errors give the offset only.
fn decode_base64(text: &[u8]) -> Result<Vec<u8>, SignError> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut padding = 0usize;
    for (offset, &c) in text.iter().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => continue,
            _ => return Err(SignError::BadBase64 { offset }),
        };
        if padding > 0 {
            // Data after padding.
            return Err(SignError::BadBase64 { offset });
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if padding > 2 {
        return Err(SignError::BadBase64 { offset: text.len() });
    }
    Ok(out)
}

fn pem_private_key_der(pem: &str) -> Result<Vec<u8>, SignError> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let start = pem.find(BEGIN).ok_or(SignError::NotPem {
        what: "no `-----BEGIN PRIVATE KEY-----` line (an encrypted or non-PKCS#8 key?)",
    })? + BEGIN.len();
    let len = pem[start..].find(END).ok_or(SignError::NotPem {
        what: "no `-----END PRIVATE KEY-----` line",
    })?;
    let der = decode_base64(&pem.as_bytes()[start..start + len])?;
    if der.is_empty() {
        return Err(SignError::NotPem { what: "empty body" });
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        for len in 0..70usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let mut out = [0u8; 100];
            let n = write_base64(&bytes, &mut out);
            assert_eq!(n, len.div_ceil(3) * 4);
            assert_eq!(decode_base64(&out[..n]).unwrap(), bytes);
        }
        let mut out = [0u8; 8];
        let n = write_base64(b"ab", &mut out);
        assert_eq!(&out[..n], b"YWI=");
        assert_eq!(
            decode_base64(b"YW*="),
            Err(SignError::BadBase64 { offset: 2 })
        );
    }

    #[test]
    fn ws_payload_sorts_by_name() {
        let mut p = [("symbol", "BTCUSDT"), ("apiKey", "k"), ("price", "1.0")];
        let mut out = Vec::new();
        ws_payload(&mut p, &mut out);
        assert_eq!(out, b"apiKey=k&price=1.0&symbol=BTCUSDT");
    }
}
