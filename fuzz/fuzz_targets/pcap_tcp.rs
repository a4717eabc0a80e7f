//! Fuzz target, structure-aware: a valid pcap (raw IPv4 link) of one WebSocket connection, its
//! SYN, SYN-ACK and upgrade request in order, then the server's byte stream (the `101` answer,
//! with or without permessage-deflate, and arbitrary frames: any opcode, FIN and RSV1 bits, mask,
//! payload) cut into arbitrary TCP segments sent in an arbitrary order with duplicates.
//! Checked: no panic, and the records read are the same as when the same segments arrive in
//! order (reassembly must not depend on the order segments were captured in).

#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use pinion_core::RecordKind;
use pinion_feed::FrameSource;
use pinion_feed::source::pcap::{PcapConfig, PcapSource};

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [10, 0, 0, 2];
const CLIENT_PORT: u16 = 40_000;
const SERVER_PORT: u16 = 443;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// A pcap file being built.
struct Pcap {
    bytes: Vec<u8>,
    t_us: u32,
}

impl Pcap {
    fn new() -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&65_535u32.to_le_bytes());
        bytes.extend_from_slice(&101u32.to_le_bytes()); // LINKTYPE_RAW
        Self { bytes, t_us: 0 }
    }

    /// One IPv4/TCP packet; `to_server` picks the direction.
    fn segment(&mut self, to_server: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]) {
        let (src, dst, sport, dport) = if to_server {
            (CLIENT, SERVER, CLIENT_PORT, SERVER_PORT)
        } else {
            (SERVER, CLIENT, SERVER_PORT, CLIENT_PORT)
        };
        let mut p = Vec::with_capacity(40 + payload.len());
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ack.to_be_bytes());
        p.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(payload);
        self.t_us += 1;
        self.bytes
            .extend_from_slice(&1_700_000_000u32.to_le_bytes());
        self.bytes.extend_from_slice(&self.t_us.to_le_bytes());
        self.bytes
            .extend_from_slice(&(p.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(p.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&p);
    }
}

/// One WebSocket frame as the server would send it (masked only when asked, to reach the error).
fn frame(u: &mut Unstructured<'_>, out: &mut Vec<u8>) -> Result<()> {
    let fin = u.ratio(7, 8)?;
    let rsv1 = u.ratio(1, 4)?;
    let opcode = match u.int_in_range(0..=9u8)? {
        0..=4 => 1,
        5 => 2,
        6 => 0,
        7 => 9,
        8 => 8,
        _ => u.int_in_range(0..=15)?,
    };
    let masked = u.ratio(1, 32)?;
    let payload: Vec<u8> = Vec::arbitrary(u)?;
    out.push(u8::from(fin) << 7 | u8::from(rsv1) << 6 | opcode);
    let m = u8::from(masked) << 7;
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&[1, 2, 3, 4]);
    }
    out.extend_from_slice(&payload);
    Ok(())
}

/// The capture, in order and shuffled.
fn captures(u: &mut Unstructured<'_>) -> Result<(Vec<u8>, Vec<u8>)> {
    let deflate = bool::arbitrary(u)?;
    let mut stream = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        .to_vec();
    if deflate {
        stream.extend_from_slice(b"Sec-WebSocket-Extensions: permessage-deflate\r\n");
    }
    stream.extend_from_slice(b"\r\n");
    for _ in 0..u.int_in_range(0..=16)? {
        frame(u, &mut stream)?;
    }
    // Cut the stream into segments.
    let mut segs: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let len = u.int_in_range(1..=512usize)?.min(stream.len() - at);
        segs.push((at, len));
        at += len;
    }
    // Shuffle and duplicate, keeping the order too.
    let mut shuffled = segs.clone();
    for i in (1..shuffled.len()).rev() {
        if u.is_empty() {
            break;
        }
        let j = u.int_in_range(0..=i)?;
        shuffled.swap(i, j);
    }
    for _ in 0..u.int_in_range(0..=3)? {
        if let Some(&s) = u.choose(&segs).ok() {
            let at = u.int_in_range(0..=shuffled.len())?;
            shuffled.insert(at, s);
        }
    }

    let build = |order: &[(usize, usize)]| {
        let (c0, s0) = (1_000u32, 5_000_000u32);
        let request: &[u8] = if deflate {
            b"GET /ws/btcusdt@depth HTTP/1.1\r\nHost: stream.binance.com\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        } else {
            b"GET /ws/btcusdt@depth HTTP/1.1\r\nHost: stream.binance.com\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n"
        };
        let mut p = Pcap::new();
        p.segment(true, c0, 0, SYN, &[]);
        p.segment(false, s0, c0 + 1, SYN | ACK, &[]);
        p.segment(true, c0 + 1, s0 + 1, ACK | PSH, request);
        let c_end = c0 + 1 + request.len() as u32;
        for &(at, len) in order {
            p.segment(
                false,
                s0 + 1 + at as u32,
                c_end,
                ACK | PSH,
                &stream[at..at + len],
            );
        }
        p.bytes
    };
    Ok((build(&segs), build(&shuffled)))
}

/// Every record read (connection, kind, payload), or `None` for a reader error.
fn read(capture: &[u8]) -> Vec<Option<(u16, RecordKind, Vec<u8>)>> {
    let mut src = PcapSource::new(capture, PcapConfig::default()).expect("a valid pcap header");
    let mut out = Vec::new();
    for _ in 0..1 << 16 {
        match src.next_record() {
            Ok(Some(rec)) => out.push(Some((rec.conn.0, rec.kind, rec.payload.to_vec()))),
            Ok(None) => return out,
            Err(_) => {
                out.push(None);
                return out;
            }
        }
    }
    panic!("reading did not end");
}

fuzz_target!(|data: &[u8]| {
    let Ok((in_order, shuffled)) = captures(&mut Unstructured::new(data)) else {
        return;
    };
    let a = read(&in_order);
    let b = read(&shuffled);
    assert_eq!(
        a, b,
        "records depend on the order segments were captured in"
    );
});
