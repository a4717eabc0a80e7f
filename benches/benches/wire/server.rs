//! The writer both clients read from: one TLS WebSocket connection on loopback, served on its
//! own thread, with every frame's bytes encrypted before the first one is written.
//!
//! Why not the exchange simulator's session: it paces by sleeping in slices of up to 10 ms and
//! flushes only before a wait, so at one frame every 20 to 50 µs it would send bursts, and it
//! does not say when it wrote each frame. This writer speaks the same protocol (rustls with
//! ring, the simulator's self-signed identity, tungstenite's server handshake and frame coding)
//! and, once the connection is open, does nothing but write(2) pre-made bytes: a frame costs the
//! server the same for both clients, and as little as it can, so the clients' own costs are
//! what the figures compare.
//!
//! - [`Schedule::Paced`]: each frame is its own TLS record (as a server that writes each
//!   message when it has it sends them); the thread spins until the frame's due time, notes the
//!   instant (ns since the run's common origin) and writes the record. The note is taken just
//!   before the write, so `applied − written` covers the kernel's loopback path, the client's
//!   wake-up, TLS, WebSocket, decoding and the book.
//! - [`Schedule::BackToBack`]: the whole stream as one plaintext run cut into full 16 KiB TLS
//!   records (as a buffering server writes a backlog), written in one go.
//!
//! The server then waits for the client to close. TLS 1.3 session tickets go out with the
//! upgrade response, before the pre-encrypted records, so the record sequence stays the one the
//! client expects.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pinion_net::rustls::{ServerConfig, ServerConnection, StreamOwned};
use tungstenite::Bytes;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// How frames are written.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Frame `i` is due `gaps_ns[..=i].sum()` after the start.
    Paced {
        /// The gap before each frame.
        gaps_ns: Arc<Vec<u64>>,
    },
    /// All at once.
    BackToBack,
}

/// The pause between the client's upgrade and the first paced frame, so the client is back
/// in its read loop.
const SETTLE: Duration = Duration::from_millis(5);
/// Longest the server waits for the client to close after the last frame.
const CLOSE_WAIT: Duration = Duration::from_secs(60);

/// A server for one connection, listening already.
#[derive(Debug)]
pub struct Writer {
    addr: SocketAddr,
    handle: JoinHandle<Vec<u64>>,
}

impl Writer {
    /// Listens on a free loopback port and serves `frames` to the first client, on a thread
    /// pinned by `pin`.
    pub fn start(
        tls: Arc<ServerConfig>,
        frames: Arc<Vec<Vec<u8>>>,
        schedule: Schedule,
        origin: Instant,
        pin: impl FnOnce() + Send + 'static,
    ) -> Writer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let handle = std::thread::Builder::new()
            .name("wire-writer".into())
            .spawn(move || {
                pin();
                serve(&listener, tls, &frames, &schedule, origin)
            })
            .expect("spawn the writer");
        Writer { addr, handle }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the connection to end; the write instant of every frame (paced), else empty.
    pub fn join(self) -> Vec<u64> {
        self.handle.join().expect("the writer thread")
    }
}

fn serve(
    listener: &TcpListener,
    tls: Arc<ServerConfig>,
    frames: &[Vec<u8>],
    schedule: &Schedule,
    origin: Instant,
) -> Vec<u64> {
    let (tcp, _) = listener.accept().expect("accept the client");
    // Without it a small frame would wait for the client's delayed ACK.
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let conn = ServerConnection::new(tls).expect("server connection");
    let ws = tungstenite::accept(StreamOwned::new(conn, tcp)).expect("WebSocket upgrade");
    let StreamOwned {
        conn: mut tls,
        sock: mut tcp,
    } = ws.into_inner();
    // Anything the handshake left queued (session tickets) goes out first.
    while tls.wants_write() {
        tls.write_tls(&mut tcp).expect("write the handshake's tail");
    }
    tls.set_buffer_limit(None);
    let written = match schedule {
        Schedule::Paced { gaps_ns } => {
            let (bytes, ends) = encrypt_each(&mut tls, frames);
            write_paced(&mut tcp, &bytes, &ends, gaps_ns, origin)
        }
        Schedule::BackToBack => {
            let bytes = encrypt_run(&mut tls, frames);
            tcp.write_all(&bytes).expect("write the stream");
            Vec::new()
        }
    };
    // The client closes once it has counted every frame.
    tcp.set_read_timeout(Some(CLOSE_WAIT))
        .expect("read timeout");
    let mut sink = [0u8; 4096];
    while matches!(tcp.read(&mut sink), Ok(n) if n > 0) {}
    written
}

/// A text frame's wire bytes (a server's frames are not masked).
fn frame_bytes(payload: &[u8], out: &mut Vec<u8>) {
    let text = OpCode::Data(Data::Text);
    Frame::message(Bytes::copy_from_slice(payload), text, true)
        .format(out)
        .expect("format into a Vec");
}

/// Every frame as its own TLS record(s): the bytes, and where each frame's records end.
fn encrypt_each(tls: &mut ServerConnection, frames: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut ends = Vec::with_capacity(frames.len());
    let mut plain = Vec::new();
    for f in frames {
        plain.clear();
        frame_bytes(f, &mut plain);
        tls.writer().write_all(&plain).expect("encrypt a frame");
        while tls.wants_write() {
            tls.write_tls(&mut bytes).expect("collect records");
        }
        ends.push(bytes.len());
    }
    (bytes, ends)
}

/// Every frame in one run of full TLS records.
fn encrypt_run(tls: &mut ServerConnection, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut plain = Vec::new();
    for f in frames {
        frame_bytes(f, &mut plain);
    }
    let mut bytes = Vec::with_capacity(plain.len() + plain.len() / 64 + 64);
    tls.writer().write_all(&plain).expect("encrypt the stream");
    while tls.wants_write() {
        tls.write_tls(&mut bytes).expect("collect records");
    }
    bytes
}

fn write_paced(
    tcp: &mut TcpStream,
    bytes: &[u8],
    ends: &[usize],
    gaps_ns: &[u64],
    origin: Instant,
) -> Vec<u64> {
    let mut written = vec![0u64; ends.len()];
    let mut due = Instant::now() + SETTLE;
    let mut start = 0;
    for (i, &end) in ends.iter().enumerate() {
        due += Duration::from_nanos(gaps_ns[i % gaps_ns.len()]);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        written[i] = crate::ns_since(origin);
        tcp.write_all(&bytes[start..end]).expect("write a frame");
        start = end;
    }
    written
}
