//! The systemd notification protocol, as far as pinion speaks it: one datagram of
//! `KEY=VALUE` lines sent to the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` for
//! the abstract namespace), and the watchdog interval from `$WATCHDOG_USEC` (for this process
//! only when `$WATCHDOG_PID`, if set, is its pid). See `sd_notify(3)`.
//!
//! Written here rather than taken from a crate: it is one `sendto` on a datagram socket, which
//! the standard library does in a few lines, and the crates that offer it bring more (journal
//! helpers, file-descriptor passing) than the engine uses.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Why the notification environment could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// `$NOTIFY_SOCKET` is set but empty or not a usable address.
    #[error("$NOTIFY_SOCKET {0:?}: not a socket path or @abstract name")]
    Socket(String),
    /// `$WATCHDOG_USEC` is set but not a positive number of microseconds.
    #[error("$WATCHDOG_USEC {0:?}: not a positive number of microseconds")]
    Interval(String),
    /// The socket could not be made or the datagram not sent.
    #[error("notifying {socket}: {source}")]
    Io {
        /// `$NOTIFY_SOCKET`.
        socket: String,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

/// The service manager's socket, and the watchdog interval it expects pings within.
#[derive(Debug)]
pub struct Notifier {
    text: String,
    address: Address,
    socket: UnixDatagram,
    /// `$WATCHDOG_USEC` (when meant for this process).
    pub interval: Option<Duration>,
}

impl Notifier {
    /// The notifier the environment describes; `None` when `$NOTIFY_SOCKET` is unset (not run
    /// by a service manager that listens).
    pub fn from_env() -> Result<Option<Self>, NotifyError> {
        let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let socket = socket.to_string_lossy().into_owned();
        let interval = match std::env::var("WATCHDOG_USEC") {
            Ok(v) => {
                let for_us = match std::env::var("WATCHDOG_PID") {
                    Ok(pid) => pid.trim() == std::process::id().to_string(),
                    Err(_) => true,
                };
                let usec: u64 = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|&u| u > 0)
                    .ok_or_else(|| NotifyError::Interval(v.clone()))?;
                for_us.then(|| Duration::from_micros(usec))
            }
            Err(_) => None,
        };
        Self::new(&socket, interval).map(Some)
    }

    /// A notifier for `socket` (`$NOTIFY_SOCKET`'s form) expecting pings within `interval`.
    pub fn new(socket: &str, interval: Option<Duration>) -> Result<Self, NotifyError> {
        let address = match socket.strip_prefix('@') {
            Some(name) if !name.is_empty() => Address::Abstract(name.as_bytes().to_vec()),
            None if socket.starts_with('/') => Address::Path(PathBuf::from(socket)),
            _ => return Err(NotifyError::Socket(socket.to_owned())),
        };
        let io = |source| NotifyError::Io {
            socket: socket.to_owned(),
            source,
        };
        Ok(Self {
            text: socket.to_owned(),
            address,
            socket: UnixDatagram::unbound().map_err(io)?,
            interval,
        })
    }

    /// Sends `state` (`READY=1`, `WATCHDOG=1`, `STOPPING=1`, ...) as one datagram.
    pub fn send(&self, state: &str) -> Result<(), NotifyError> {
        let sent = match &self.address {
            Address::Path(p) => self.socket.send_to(state.as_bytes(), p),
            Address::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt as _;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .and_then(|a| self.socket.send_to_addr(state.as_bytes(), &a))
            }
        };
        sent.map(|_| ()).map_err(|source| NotifyError::Io {
            socket: self.text.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_reaches_a_path_socket_and_bad_addresses_are_named() {
        let dir = std::env::temp_dir().join(format!("pinion-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier::new(path.to_str().expect("utf-8"), None).expect("notifier");
        n.send("READY=1").expect("sent");
        let mut buf = [0u8; 64];
        let got = listener.recv(&mut buf).expect("received");
        assert_eq!(&buf[..got], b"READY=1");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(matches!(
            Notifier::new("relative/path", None),
            Err(NotifyError::Socket(_))
        ));
        assert!(matches!(
            Notifier::new("@", None),
            Err(NotifyError::Socket(_))
        ));
    }

    #[test]
    fn an_abstract_name_is_reached_too() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("pinion-notify-test-{}", std::process::id());
        let addr =
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("address");
        let listener = UnixDatagram::bind_addr(&addr).expect("bind");
        let n = Notifier::new(&format!("@{name}"), None).expect("notifier");
        n.send("WATCHDOG=1").expect("sent");
        let mut buf = [0u8; 64];
        let got = listener.recv(&mut buf).expect("received");
        assert_eq!(&buf[..got], b"WATCHDOG=1");
    }
}
