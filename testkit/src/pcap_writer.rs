//! Writes pcap and pcapng captures of WebSocket sessions for the replay tests.
//!
//! Everything is built from the specifications (pcap file format, pcapng, Ethernet/802.1Q,
//! Linux cooked v1/v2, IPv4, IPv6, TCP, RFC 6455, RFC 7692) independently of the reader under
//! test, so a shared misunderstanding cannot make both sides agree by accident. Checksums are
//! left zero: the reader does not check them (captures taken on the sending host rarely have
//! them right anyway).

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};

use flate2::{Compress, Compression, FlushCompress};

/// Link type: Ethernet.
pub const ETHERNET: u16 = 1;
/// Link type: Linux cooked capture v1.
pub const LINUX_SLL: u16 = 113;
/// Link type: Linux cooked capture v2.
pub const LINUX_SLL2: u16 = 276;

/// TCP flag FIN.
pub const FIN: u8 = 0x01;
/// TCP flag SYN.
pub const SYN: u8 = 0x02;
/// TCP flag RST.
pub const RST: u8 = 0x04;
/// TCP flag PSH.
pub const PSH: u8 = 0x08;
/// TCP flag ACK.
pub const ACK: u8 = 0x10;

/// The container to write.
#[derive(Debug, Clone, Copy)]
pub enum Container {
    /// Classic pcap with one link type.
    Pcap {
        /// Big-endian headers.
        big_endian: bool,
        /// Nanosecond time stamps (else microseconds).
        nanos: bool,
    },
    /// pcapng with one section.
    PcapNg {
        /// Big-endian blocks.
        big_endian: bool,
    },
}

/// A capture being written.
#[derive(Debug)]
pub struct CaptureWriter {
    container: Container,
    out: Vec<u8>,
    /// pcapng: timestamp units per second of each interface.
    units: Vec<u64>,
}

impl CaptureWriter {
    /// A classic pcap file with the given link type.
    pub fn pcap(big_endian: bool, nanos: bool, link: u16) -> Self {
        let mut w = CaptureWriter {
            container: Container::Pcap { big_endian, nanos },
            out: Vec::new(),
            units: vec![],
        };
        w.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        w.u16(2);
        w.u16(4);
        w.u32(0); // thiszone
        w.u32(0); // sigfigs
        w.u32(262_144);
        w.u32(u32::from(link));
        w
    }

    /// A pcapng file: a section header, interfaces to be added.
    pub fn pcapng(big_endian: bool) -> Self {
        let mut w = CaptureWriter {
            container: Container::PcapNg { big_endian },
            out: Vec::new(),
            units: vec![],
        };
        w.section_header();
        w
    }

    /// Starts another pcapng section (its interfaces are numbered afresh).
    pub fn section_header(&mut self) {
        self.units.clear();
        let mut body = Vec::new();
        let big = self.big_endian();
        put_u32(&mut body, 0x1a2b_3c4d, big);
        put_u16(&mut body, 1, big);
        put_u16(&mut body, 0, big);
        body.extend_from_slice(&[0xff; 8]); // section length unknown
        self.block(0x0a0d_0d0a, &body);
    }

    /// Adds a pcapng interface; `tsresol` is the raw `if_tsresol` byte (None: default µs).
    /// Returns its id.
    pub fn interface(&mut self, link: u16, tsresol: Option<u8>) -> u32 {
        let big = self.big_endian();
        let mut body = Vec::new();
        put_u16(&mut body, link, big);
        put_u16(&mut body, 0, big);
        put_u32(&mut body, 262_144, big);
        let units = match tsresol {
            Some(v) => {
                put_u16(&mut body, 9, big);
                put_u16(&mut body, 1, big);
                body.extend_from_slice(&[v, 0, 0, 0]);
                if v & 0x80 == 0 {
                    10u64.pow(u32::from(v))
                } else {
                    1u64 << (v & 0x7f)
                }
            }
            None => 1_000_000,
        };
        // A comment option the reader must step over.
        put_u16(&mut body, 1, big);
        put_u16(&mut body, 5, big);
        body.extend_from_slice(b"test\0\0\0\0");
        put_u32(&mut body, 0, big); // opt_endofopt
        self.block(1, &body);
        self.units.push(units);
        (self.units.len() - 1) as u32
    }

    /// Writes a packet (pcap record or pcapng Enhanced Packet Block on `iface`).
    pub fn packet(&mut self, iface: u32, t_ns: u64, frame: &[u8]) {
        match self.container {
            Container::Pcap { nanos, .. } => {
                let sec = t_ns / 1_000_000_000;
                let frac = t_ns % 1_000_000_000;
                self.u32(sec as u32);
                self.u32(if nanos { frac } else { frac / 1_000 } as u32);
                self.u32(frame.len() as u32);
                self.u32(frame.len() as u32);
                self.out.extend_from_slice(frame);
            }
            Container::PcapNg { big_endian: big } => {
                let units = self.units[iface as usize];
                let ts = (u128::from(t_ns) * u128::from(units) / 1_000_000_000) as u64;
                let mut body = Vec::new();
                put_u32(&mut body, iface, big);
                put_u32(&mut body, (ts >> 32) as u32, big);
                put_u32(&mut body, ts as u32, big);
                put_u32(&mut body, frame.len() as u32, big);
                put_u32(&mut body, frame.len() as u32, big);
                body.extend_from_slice(frame);
                pad4(&mut body);
                self.block(6, &body);
            }
        }
    }

    /// Writes a pcapng Simple Packet Block (interface 0, no timestamp).
    pub fn simple_packet(&mut self, frame: &[u8]) {
        let big = self.big_endian();
        let mut body = Vec::new();
        put_u32(&mut body, frame.len() as u32, big);
        body.extend_from_slice(frame);
        pad4(&mut body);
        self.block(3, &body);
    }

    /// Writes a block the reader must skip (a Name Resolution Block).
    pub fn unknown_block(&mut self) {
        self.block(4, &[0, 0, 0, 0]);
    }

    /// The file's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }

    fn big_endian(&self) -> bool {
        match self.container {
            Container::Pcap { big_endian, .. } | Container::PcapNg { big_endian } => big_endian,
        }
    }

    fn block(&mut self, kind: u32, body: &[u8]) {
        let big = self.big_endian();
        let total = (body.len() + 12) as u32;
        put_u32(&mut self.out, kind, big);
        put_u32(&mut self.out, total, big);
        self.out.extend_from_slice(body);
        put_u32(&mut self.out, total, big);
    }

    fn u16(&mut self, v: u16) {
        let big = self.big_endian();
        put_u16(&mut self.out, v, big);
    }

    fn u32(&mut self, v: u32) {
        let big = self.big_endian();
        put_u32(&mut self.out, v, big);
    }
}

fn put_u16(out: &mut Vec<u8>, v: u16, big: bool) {
    out.extend_from_slice(&if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
}

fn put_u32(out: &mut Vec<u8>, v: u32, big: bool) {
    out.extend_from_slice(&if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// A TCP segment to be wrapped in IP and a link layer.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Source address.
    pub src: SocketAddr,
    /// Destination address.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// TCP flags ([`FIN`], [`SYN`], …).
    pub flags: u8,
    /// TCP payload.
    pub payload: Vec<u8>,
}

impl Segment {
    /// The IP packet (IPv4 or IPv6 by the addresses' family) carrying this segment. IPv6 packets
    /// carry a hop-by-hop options header before TCP; IPv4 packets carry a 4-byte NOP option.
    pub fn ip(&self) -> Vec<u8> {
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&self.src.port().to_be_bytes());
        tcp.extend_from_slice(&self.dst.port().to_be_bytes());
        tcp.extend_from_slice(&self.seq.to_be_bytes());
        tcp.extend_from_slice(&self.ack.to_be_bytes());
        tcp.push(8 << 4); // 32-byte header: 12 bytes of options
        tcp.push(self.flags);
        tcp.extend_from_slice(&65535u16.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
        tcp.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]); // NOP NOP timestamps
        tcp.extend_from_slice(&self.payload);
        match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut ip = vec![0x46, 0];
                ip.extend_from_slice(&((24 + tcp.len()) as u16).to_be_bytes());
                ip.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, 6, 0, 0]); // DF set
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
                ip.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
                ip.extend_from_slice(&tcp);
                ip
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut ip = vec![0x60, 0, 0, 0];
                ip.extend_from_slice(&((8 + tcp.len()) as u16).to_be_bytes());
                ip.extend_from_slice(&[0, 64]); // next: hop-by-hop
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
                ip.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // next TCP, PadN
                ip.extend_from_slice(&tcp);
                ip
            }
            _ => panic!("mixed address families"),
        }
    }
}

/// Ethernet II around an IP packet, with the given 802.1Q/802.1ad tags (outermost first).
pub fn ethernet(tags: &[u16], ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for (i, vid) in tags.iter().enumerate() {
        let tpid: u16 = if i == 0 && tags.len() > 1 {
            0x88a8
        } else {
            0x8100
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype(ip).to_be_bytes());
    f.extend_from_slice(ip);
    // Short frames are padded to the Ethernet minimum: the reader must trim by IP length.
    while f.len() < 60 {
        f.push(0);
    }
    f
}

/// Linux cooked v1 around an IP packet.
pub fn sll(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 1, 0, 0];
    f.extend_from_slice(&ethertype(ip).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// Linux cooked v2 around an IP packet.
pub fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&ethertype(ip).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(ip);
    f
}

fn ethertype(ip: &[u8]) -> u16 {
    if ip[0] >> 4 == 6 { 0x86dd } else { 0x0800 }
}

/// A TCP connection between a client and a server, keeping both sequence numbers.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The client's address.
    pub client: SocketAddr,
    /// The server's address.
    pub server: SocketAddr,
    /// The client's next sequence number.
    pub client_seq: u32,
    /// The server's next sequence number.
    pub server_seq: u32,
}

impl Flow {
    /// A connection from `client` to `server` (`"ip:port"`) with the given initial sequence
    /// numbers.
    pub fn new(client: &str, server: &str, client_isn: u32, server_isn: u32) -> Self {
        Flow {
            client: client.parse().expect("client address"),
            server: server.parse().expect("server address"),
            client_seq: client_isn,
            server_seq: server_isn,
        }
    }

    /// SYN, SYN-ACK, ACK.
    pub fn open(&mut self) -> Vec<Segment> {
        let syn = self.seg(true, SYN, vec![]);
        self.client_seq = self.client_seq.wrapping_add(1);
        let syn_ack = self.seg(false, SYN | ACK, vec![]);
        self.server_seq = self.server_seq.wrapping_add(1);
        let ack = self.seg(true, ACK, vec![]);
        vec![syn, syn_ack, ack]
    }

    /// Data from the client, advancing its sequence number.
    pub fn client(&mut self, data: &[u8]) -> Segment {
        let s = self.seg(true, ACK | PSH, data.to_vec());
        self.client_seq = self.client_seq.wrapping_add(data.len() as u32);
        s
    }

    /// Data from the server, advancing its sequence number.
    pub fn server(&mut self, data: &[u8]) -> Segment {
        let s = self.seg(false, ACK | PSH, data.to_vec());
        self.server_seq = self.server_seq.wrapping_add(data.len() as u32);
        s
    }

    /// A segment with explicit flags, not advancing anything.
    pub fn seg(&self, from_client: bool, flags: u8, payload: Vec<u8>) -> Segment {
        let (src, dst, seq, ack) = if from_client {
            (self.client, self.server, self.client_seq, self.server_seq)
        } else {
            (self.server, self.client, self.server_seq, self.client_seq)
        };
        Segment {
            src,
            dst,
            seq,
            ack,
            flags,
            payload,
        }
    }

    /// FIN from the server (advances its sequence by one).
    pub fn server_fin(&mut self) -> Segment {
        let s = self.seg(false, FIN | ACK, vec![]);
        self.server_seq = self.server_seq.wrapping_add(1);
        s
    }
}

/// The client's upgrade request.
pub fn upgrade_request(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )
    .into_bytes()
}

/// The server's response: `101` with the given extensions header value, or another status.
pub fn upgrade_response(status: u16, extensions: Option<&str>) -> Vec<u8> {
    let mut r = if status == 101 {
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            .to_owned()
    } else {
        format!("HTTP/1.1 {status} Nope\r\nContent-Length: 0\r\n")
    };
    if let Some(ext) = extensions {
        r.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// One WebSocket frame. The length uses the shortest encoding unless `force_64` is set.
pub fn ws_frame(
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
    ws_frame_with(fin, rsv1, opcode, payload, mask, false)
}

/// One WebSocket frame, optionally with a (non-minimal) 64-bit length.
pub fn ws_frame_with(
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    force_64: bool,
) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if force_64 || n > 65_535 {
        f.push(m | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    } else if n > 125 {
        f.push(m | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(m | n as u8);
    }
    match mask {
        Some(key) => {
            f.extend_from_slice(&key);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// A permessage-deflate compressor for one direction.
#[derive(Debug)]
pub struct Deflater {
    z: Compress,
    reset_each_message: bool,
}

impl Deflater {
    /// A deflater; `reset_each_message` when the extension negotiated no context takeover.
    pub fn new(reset_each_message: bool) -> Self {
        Deflater {
            z: Compress::new(Compression::default(), false),
            reset_each_message,
        }
    }

    /// Compresses one message: raw deflate, sync flush, the `00 00 ff ff` tail removed.
    pub fn compress(&mut self, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(message.len() + 64);
        let start = self.z.total_in();
        loop {
            let used = (self.z.total_in() - start) as usize;
            self.z
                .compress_vec(&message[used..], &mut out, FlushCompress::Sync)
                .expect("deflate");
            let used = (self.z.total_in() - start) as usize;
            // Room left over means the flush completed.
            if used == message.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        assert!(
            out.ends_with(&[0, 0, 0xff, 0xff]),
            "sync flush ends with an empty stored block"
        );
        out.truncate(out.len() - 4);
        if self.reset_each_message {
            self.z.reset();
        }
        out
    }
}
