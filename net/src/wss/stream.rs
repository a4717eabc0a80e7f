//! The byte stream tungstenite reads and writes: rustls over a non-blocking `mio` socket.
//!
//! `Read` hands out decrypted bytes; when rustls holds none it reads the socket once and
//! decrypts, so a `WouldBlock` from here always means the socket itself has nothing more (the
//! edge-triggered `mio` registration is then re-armed). `Write` hands bytes to rustls and
//! `flush` writes the TLS records out; a full socket answers `WouldBlock` and the rest goes out
//! on the next writable event. A TLS failure comes out of `Read` as an `io::Error` carrying the
//! rustls error (kind `InvalidData`), so the connection can tell it from a socket failure.
//!
//! The receive stamp is taken here, right after the socket read that returned bytes: every
//! message decoded from those bytes carries it. `SO_TIMESTAMPING` (a kernel receive stamp per
//! segment, read with `recvmsg` and its control messages) would replace the stamp at this
//! point; std and `mio` read with plain `read`, so the stamp is the time of that call.

use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;
use rustls::ClientConnection;

/// rustls over a non-blocking TCP socket.
#[derive(Debug)]
pub(crate) struct TlsStream {
    pub tcp: TcpStream,
    pub tls: ClientConnection,
    /// The clock receive stamps are counted from.
    origin: Instant,
    /// When the last socket read that returned bytes returned, in ns since `origin`.
    pub last_read_ns: u64,
    /// Bytes read from the socket (TLS records, not plaintext).
    pub bytes_read: u64,
}

impl TlsStream {
    pub fn new(tcp: TcpStream, tls: ClientConnection, origin: Instant) -> Self {
        TlsStream {
            tcp,
            tls,
            origin,
            last_read_ns: 0,
            bytes_read: 0,
        }
    }

    /// Reads the socket once into rustls and decrypts what came. `Ok(0)`: the peer closed TCP.
    fn read_socket(&mut self) -> io::Result<usize> {
        let n = self.tls.read_tls(&mut self.tcp)?;
        self.last_read_ns = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.bytes_read += n as u64;
        if let Err(error) = self.tls.process_new_packets() {
            // rustls has queued an alert telling the peer why; send it if the socket takes it.
            let _ = self.write_records();
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        Ok(n)
    }

    /// Writes queued TLS records until none are left or the socket is full.
    pub fn write_records(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.tcp)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Advances the TLS handshake as far as the socket allows. `Ok(true)` once it is complete.
    pub fn handshake(&mut self) -> io::Result<bool> {
        loop {
            match self.write_records() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if !self.tls.is_handshaking() {
                return Ok(true);
            }
            match self.read_socket() {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // `Ok(0)`: the peer's close_notify; `UnexpectedEof`: TCP ended without one.
            match self.tls.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            // A closed socket is seen by rustls (it answers 0 or `UnexpectedEof` above).
            self.read_socket()?;
            // Key updates and alerts rustls wants to answer go out with the next flush; a
            // TLS 1.3 session ticket needs no answer.
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tls.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            // rustls's plaintext buffer is full: make room, or tell the caller to come back.
            self.write_records()?;
            return match self.tls.writer().write(buf)? {
                0 => Err(io::ErrorKind::WouldBlock.into()),
                n => Ok(n),
            };
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tls.writer().flush()?;
        self.write_records()
    }
}
