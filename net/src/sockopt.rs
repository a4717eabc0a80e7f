//! Socket options for a connected TCP socket, set and then read back with `getsockopt`, so a
//! caller can show what the kernel actually applied rather than what was asked.
//!
//! `TCP_NODELAY` is always set: every message of a feed or a request is small and latency
//! bound, and Nagle's algorithm would hold it back behind an unacknowledged segment. The rest
//! are optional ([`SocketOptions`]): receive and send buffer sizes (`SO_RCVBUF`/`SO_SNDBUF`;
//! Linux reads back twice the size asked, its bookkeeping overhead, and caps at
//! `net.core.rmem_max`/`wmem_max` unless privileged), `TCP_QUICKACK` (not sticky on Linux: the
//! kernel may leave quick-ack mode again, so it is a hint applied at connect) and
//! `SO_BUSY_POLL` in µs (needs `CAP_NET_ADMIN` to raise on Linux).
//!
//! Every option has one [`Setting`] outcome in the [`SocketReport`]: not asked, set (with the
//! value read back), unsupported on this platform, or refused by the kernel (with the OS error).
//! Nothing fails silently; whether a refused option is fatal is the caller's choice, except
//! that [`SocketReport::nodelay_on`] is what the connections here insist on.
//!
//! All calls go through `socket2`'s safe API on a borrowed descriptor ([`socket2::SockRef`]),
//! so the socket stays owned by std or `mio`.

use std::fmt;
use std::io;
use std::os::fd::AsFd;

use socket2::SockRef;

/// The optional socket options to apply after connect (`TCP_NODELAY` is always applied).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// `SO_RCVBUF` in bytes; `None` keeps the kernel's autotuning.
    pub recv_buffer: Option<usize>,
    /// `SO_SNDBUF` in bytes; `None` keeps the kernel's autotuning.
    pub send_buffer: Option<usize>,
    /// Set `TCP_QUICKACK` (Linux).
    pub quickack: bool,
    /// `SO_BUSY_POLL` in µs (Linux); `None` leaves it as the system default.
    pub busy_poll_us: Option<u32>,
}

/// What became of one option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting<T> {
    /// Not asked for.
    NotAsked,
    /// Set; `read_back` is what `getsockopt` answered afterwards.
    Set {
        /// The value asked for.
        asked: T,
        /// The value read back.
        read_back: T,
    },
    /// This platform (or this build of `socket2`) offers no such option.
    Unsupported {
        /// The value asked for.
        asked: T,
    },
    /// The kernel refused to set it or to read it back.
    Failed {
        /// The value asked for.
        asked: T,
        /// The error's kind.
        kind: io::ErrorKind,
        /// The OS error number, when there is one (`EPERM`, `ENOPROTOOPT`, …).
        os_error: Option<i32>,
    },
}

impl<T: Copy> Setting<T> {
    /// Sets with `set`, reads back with `get`.
    fn apply(
        asked: T,
        set: impl FnOnce(T) -> io::Result<()>,
        get: impl FnOnce() -> io::Result<T>,
    ) -> Self {
        match set(asked).and_then(|()| get()) {
            Ok(read_back) => Setting::Set { asked, read_back },
            Err(e) => Setting::Failed {
                asked,
                kind: e.kind(),
                os_error: e.raw_os_error(),
            },
        }
    }

    /// Whether the option was asked for and did not take (failed or unsupported).
    pub fn missed(&self) -> bool {
        matches!(self, Setting::Unsupported { .. } | Setting::Failed { .. })
    }
}

impl<T: fmt::Display> fmt::Display for Setting<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::NotAsked => f.write_str("default"),
            Setting::Set { asked, read_back } => write!(f, "{asked} (reads {read_back})"),
            Setting::Unsupported { asked } => write!(f, "{asked} unsupported here"),
            Setting::Failed {
                asked,
                kind,
                os_error,
            } => match os_error {
                Some(code) => write!(f, "{asked} refused: {kind} (os error {code})"),
                None => write!(f, "{asked} refused: {kind}"),
            },
        }
    }
}

/// What was asked of a socket and what it reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketReport {
    /// `TCP_NODELAY` (always asked).
    pub nodelay: Setting<bool>,
    /// `SO_RCVBUF`.
    pub recv_buffer: Setting<usize>,
    /// `SO_SNDBUF`.
    pub send_buffer: Setting<usize>,
    /// `TCP_QUICKACK`.
    pub quickack: Setting<bool>,
    /// `SO_BUSY_POLL` (µs).
    pub busy_poll_us: Setting<u32>,
}

impl SocketReport {
    /// Whether `TCP_NODELAY` reads back as on.
    pub fn nodelay_on(&self) -> bool {
        matches!(
            self.nodelay,
            Setting::Set {
                read_back: true,
                ..
            }
        )
    }

    /// Whether every option asked for was set (read-back values may still differ from the
    /// asked ones: a buffer size is rounded by the kernel).
    pub fn all_applied(&self) -> bool {
        !(self.nodelay.missed()
            || self.recv_buffer.missed()
            || self.send_buffer.missed()
            || self.quickack.missed()
            || self.busy_poll_us.missed())
    }
}

impl fmt::Display for SocketReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TCP_NODELAY {}, SO_RCVBUF {}, SO_SNDBUF {}, TCP_QUICKACK {}, SO_BUSY_POLL {}",
            self.nodelay, self.recv_buffer, self.send_buffer, self.quickack, self.busy_poll_us
        )
    }
}

/// Applies `TCP_NODELAY` and `options` to a connected TCP socket and reads each back.
pub fn apply(socket: &impl AsFd, options: &SocketOptions) -> SocketReport {
    let sock = SockRef::from(socket);
    let optional = |asked: Option<usize>,
                    set: fn(&SockRef<'_>, usize) -> io::Result<()>,
                    get: fn(&SockRef<'_>) -> io::Result<usize>| match asked {
        None => Setting::NotAsked,
        Some(asked) => Setting::apply(asked, |v| set(&sock, v), || get(&sock)),
    };
    SocketReport {
        nodelay: Setting::apply(true, |v| sock.set_tcp_nodelay(v), || sock.tcp_nodelay()),
        recv_buffer: optional(
            options.recv_buffer,
            |s, v| s.set_recv_buffer_size(v),
            |s| s.recv_buffer_size(),
        ),
        send_buffer: optional(
            options.send_buffer,
            |s, v| s.set_send_buffer_size(v),
            |s| s.send_buffer_size(),
        ),
        quickack: if options.quickack {
            quickack(&sock)
        } else {
            Setting::NotAsked
        },
        busy_poll_us: match options.busy_poll_us {
            None => Setting::NotAsked,
            Some(us) => busy_poll(&sock, us),
        },
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn quickack(sock: &SockRef<'_>) -> Setting<bool> {
    Setting::apply(true, |v| sock.set_tcp_quickack(v), || sock.tcp_quickack())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn quickack(_: &SockRef<'_>) -> Setting<bool> {
    Setting::Unsupported { asked: true }
}

#[cfg(target_os = "linux")]
fn busy_poll(sock: &SockRef<'_>, us: u32) -> Setting<u32> {
    Setting::apply(us, |v| sock.set_busy_poll(v), || sock.busy_poll())
}

#[cfg(not(target_os = "linux"))]
fn busy_poll(_: &SockRef<'_>, us: u32) -> Setting<u32> {
    Setting::Unsupported { asked: us }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (client, server)
    }

    #[test]
    fn nodelay_is_set_and_read_back_and_nothing_else_is_touched() {
        let (client, _server) = connected();
        assert!(!client.nodelay().expect("read"), "std starts with Nagle on");
        let report = apply(&client, &SocketOptions::default());
        assert!(report.nodelay_on(), "{report}");
        assert!(client.nodelay().expect("read"), "the socket itself has it");
        assert_eq!(report.recv_buffer, Setting::NotAsked);
        assert_eq!(report.send_buffer, Setting::NotAsked);
        assert_eq!(report.quickack, Setting::NotAsked);
        assert_eq!(report.busy_poll_us, Setting::NotAsked);
        assert!(report.all_applied());
    }

    #[test]
    fn buffer_sizes_read_back_what_the_kernel_applied() {
        let (client, _server) = connected();
        let options = SocketOptions {
            recv_buffer: Some(64 << 10),
            send_buffer: Some(32 << 10),
            quickack: true,
            busy_poll_us: None,
        };
        let report = apply(&client, &options);
        let Setting::Set { asked, read_back } = report.recv_buffer else {
            panic!("SO_RCVBUF: {report}");
        };
        assert_eq!(asked, 64 << 10);
        // Linux doubles the value for its bookkeeping; elsewhere it reads back at least as set.
        if cfg!(target_os = "linux") {
            assert_eq!(read_back, 2 * asked, "{report}");
        } else {
            assert!(read_back >= asked, "{report}");
        }
        assert!(
            matches!(report.send_buffer, Setting::Set { .. }),
            "{report}"
        );
        if cfg!(target_os = "linux") {
            assert_eq!(
                report.quickack,
                Setting::Set {
                    asked: true,
                    read_back: true
                }
            );
        } else {
            assert_eq!(report.quickack, Setting::Unsupported { asked: true });
        }
        let shown = report.to_string();
        assert!(shown.contains("SO_RCVBUF 65536 (reads "), "{shown}");
    }

    #[test]
    fn busy_poll_is_set_or_its_refusal_reported() {
        let (client, _server) = connected();
        let report = apply(
            &client,
            &SocketOptions {
                busy_poll_us: Some(50),
                ..SocketOptions::default()
            },
        );
        match report.busy_poll_us {
            Setting::Set { asked, read_back } => assert_eq!((asked, read_back), (50, 50)),
            // Without CAP_NET_ADMIN the kernel refuses: reported, not hidden.
            Setting::Failed { asked, kind, .. } => {
                assert_eq!(asked, 50);
                assert_eq!(kind, io::ErrorKind::PermissionDenied);
                assert!(!report.all_applied());
            }
            Setting::Unsupported { asked } => {
                assert_eq!(asked, 50);
                if cfg!(target_os = "linux") {
                    panic!("Linux has SO_BUSY_POLL: {report}");
                }
            }
            Setting::NotAsked => panic!("asked for"),
        }
        assert!(report.nodelay_on());
    }

    #[test]
    fn a_socket_the_kernel_refuses_is_reported_failed() {
        // A UDP socket has no TCP level, so TCP_NODELAY is refused and must be reported, not assumed.
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let report = apply(&udp, &SocketOptions::default());
        assert!(!report.nodelay_on());
        assert!(matches!(
            report.nodelay,
            Setting::Failed { asked: true, .. }
        ));
        assert!(!report.all_applied());
        assert!(report.to_string().starts_with("TCP_NODELAY true refused"));
    }
}
