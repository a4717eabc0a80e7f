//! pcap/pcapng replay: real captures checked against a reference dissector's reading, and
//! generated captures covering the container, link, TCP and WebSocket cases one by one.
//!
//! The expected frames of the real captures were read with `tshark -Y websocket -T fields -e
//! frame.number -e frame.time_epoch -e tcp.srcport -e websocket.opcode -e websocket.fin -e
//! websocket.payload_length -e websocket.payload.text -e websocket.payload.ping -e
//! websocket.payload.pong -e websocket.payload.close.status_code -e data.data` and written
//! here literally; the tests do not run tshark.

use std::io::Cursor;

use pinion_core::{ConnId, RecordKind, Venue};
use pinion_feed::source::pcap::{
    CaptureFilter, DirectionFilter, HandshakeError, PcapConfig, PcapSource, StreamState, Unusable,
};
use pinion_feed::{FrameSource, SourceError};
use pinion_testkit::pcap_writer::*;

/// An owned copy of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    t: u64,
    conn: u16,
    kind: RecordKind,
    meta: String,
    payload: Vec<u8>,
}

fn rec(t: u64, conn: u16, kind: RecordKind, meta: &str, payload: &[u8]) -> Rec {
    Rec {
        t,
        conn,
        kind,
        meta: meta.to_owned(),
        payload: payload.to_vec(),
    }
}

fn frame(t: u64, conn: u16, payload: &[u8]) -> Rec {
    rec(t, conn, RecordKind::Frame, "", payload)
}

fn drain<R: std::io::Read>(source: &mut PcapSource<R>) -> Vec<Rec> {
    let mut out = Vec::new();
    while let Some(r) = source.next_record().expect("record") {
        out.push(Rec {
            t: r.t_recv,
            conn: r.conn.0,
            kind: r.kind,
            meta: String::from_utf8_lossy(r.meta).into_owned(),
            payload: r.payload.to_vec(),
        });
    }
    out
}

fn replay(bytes: Vec<u8>, config: PcapConfig) -> (Vec<Rec>, PcapSource<Cursor<Vec<u8>>>) {
    let mut source = PcapSource::new(Cursor::new(bytes), config).expect("capture header");
    let records = drain(&mut source);
    (records, source)
}

fn both_directions() -> PcapConfig {
    PcapConfig {
        filter: CaptureFilter {
            directions: DirectionFilter::Both,
            ..CaptureFilter::default()
        },
        control_frames: true,
        ..PcapConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Real captures.

const CLOSE_1000: &[u8] = &[0x03, 0xe8];

fn real(name: &str, config: PcapConfig) -> Option<(Vec<Rec>, PcapSource)> {
    let path = pinion_testkit::data::require(&format!("pcap/{name}"))?;
    let mut source = PcapSource::open(path, config).expect("open capture");
    let records = drain(&mut source);
    Some((records, source))
}

#[test]
fn real_websocket_baseline_decodes_as_the_dissector_shows() {
    let Some((records, source)) = real("websocket_baseline.pcap", both_directions()) else {
        return;
    };
    let connect = 1_783_191_821_935_750_000;
    let url = "ws://127.0.0.1:8765/";
    // tshark frames 8 (client, masked, 16-bit length 1000), 9 (server, 1350), 10 and 12 (close 1000).
    let expected = vec![
        rec(connect, 0, RecordKind::Connect, url, b""),
        rec(connect, 1, RecordKind::Connect, url, b""),
        frame(
            1_783_191_821_935_869_000,
            1,
            "Hello_Zeek_Analyzer_".repeat(50).as_bytes(),
        ),
        frame(
            1_783_191_821_935_986_000,
            0,
            "Zeek_WebSocket_Test_String_".repeat(50).as_bytes(),
        ),
        rec(
            1_783_191_821_936_084_000,
            0,
            RecordKind::Frame,
            "close",
            CLOSE_1000,
        ),
        rec(
            1_783_191_821_936_084_000,
            0,
            RecordKind::Disconnect,
            "",
            b"",
        ),
        rec(
            1_783_191_821_936_199_000,
            1,
            RecordKind::Frame,
            "close",
            CLOSE_1000,
        ),
        rec(
            1_783_191_821_936_199_000,
            1,
            RecordKind::Disconnect,
            "",
            b"",
        ),
    ];
    assert_eq!(records, expected);
    assert_eq!(records[2].payload.len(), 1000);
    assert_eq!(records[3].payload.len(), 1350);
    let infos = source.connections();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].id, ConnId(0));
    assert_eq!(
        infos[0].url,
        "ws://127.0.0.1:8765/ (127.0.0.1:8765 -> 127.0.0.1:58034, server->client)"
    );
    let stats = source.stats();
    assert_eq!(
        (
            stats.packets,
            stats.upgrades,
            stats.messages,
            stats.control_frames
        ),
        (15, 1, 2, 2)
    );
    assert_eq!(
        (
            stats.gaps,
            stats.bad_frames,
            stats.retransmits,
            stats.out_of_order
        ),
        (0, 0, 0, 0)
    );
}

#[test]
fn real_two_binary_fragments_decodes_as_the_dissector_shows() {
    let Some((records, source)) = real("two-binary-fragments.pcap", both_directions()) else {
        return;
    };
    let connect = 1_705_688_423_687_798_000;
    let url = "ws://localhost:8080/";
    let expected = vec![
        rec(connect, 0, RecordKind::Connect, url, b""),
        rec(connect, 1, RecordKind::Connect, url, b""),
        rec(
            1_705_688_423_687_842_000,
            0,
            RecordKind::Frame,
            "ping",
            b"Zeek",
        ),
        rec(
            1_705_688_423_688_135_000,
            1,
            RecordKind::Frame,
            "pong",
            b"Zeek",
        ),
        frame(1_705_688_423_698_477_000, 1, b"Hello Zeek!"),
        // Frame 13: binary (fin 0, 5 bytes) + continuation (fin 1, 7 bytes) in one segment.
        frame(1_705_688_423_698_698_000, 0, b"Hello there!"),
        rec(
            1_705_688_423_699_238_000,
            1,
            RecordKind::Frame,
            "close",
            CLOSE_1000,
        ),
        rec(
            1_705_688_423_699_238_000,
            1,
            RecordKind::Disconnect,
            "",
            b"",
        ),
        rec(
            1_705_688_423_699_363_000,
            0,
            RecordKind::Frame,
            "close",
            CLOSE_1000,
        ),
        rec(
            1_705_688_423_699_363_000,
            0,
            RecordKind::Disconnect,
            "",
            b"",
        ),
    ];
    assert_eq!(records, expected);
    assert_eq!(source.stats().messages, 2);
}

#[test]
fn real_reply_ping_coalesced_decodes_as_the_dissector_shows() {
    let Some((records, _)) = real("reply-ping-coalesced.pcap", both_directions()) else {
        return;
    };
    // Frame 6 carries the 101 response and the server's ping in one segment.
    let t6 = 1_705_584_141_432_956_000;
    let url = "ws://localhost:8080/";
    let expected = vec![
        rec(t6, 0, RecordKind::Connect, url, b""),
        rec(t6, 1, RecordKind::Connect, url, b""),
        rec(t6, 0, RecordKind::Frame, "ping", b"Zeek"),
        rec(
            1_705_584_141_433_197_000,
            1,
            RecordKind::Frame,
            "pong",
            b"Zeek",
        ),
        frame(1_705_584_141_443_438_000, 1, b"Hello Zeek!"),
        frame(1_705_584_141_443_532_000, 0, b"Hello there!"),
        rec(
            1_705_584_141_443_840_000,
            1,
            RecordKind::Frame,
            "close",
            CLOSE_1000,
        ),
        rec(
            1_705_584_141_443_840_000,
            1,
            RecordKind::Disconnect,
            "",
            b"",
        ),
        rec(
            1_705_584_141_443_882_000,
            0,
            RecordKind::Frame,
            "close",
            CLOSE_1000,
        ),
        rec(
            1_705_584_141_443_882_000,
            0,
            RecordKind::Disconnect,
            "",
            b"",
        ),
    ];
    assert_eq!(records, expected);
}

#[test]
fn real_capture_default_config_gives_server_messages_only() {
    let Some((records, source)) = real("reply-ping-coalesced.pcap", PcapConfig::default()) else {
        return;
    };
    let url = "ws://localhost:8080/";
    assert_eq!(
        records,
        vec![
            rec(1_705_584_141_432_956_000, 0, RecordKind::Connect, url, b""),
            frame(1_705_584_141_443_532_000, 0, b"Hello there!"),
            rec(
                1_705_584_141_443_882_000,
                0,
                RecordKind::Disconnect,
                "",
                b""
            ),
        ]
    );
    let reports = source.tcp_connections();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].server,
        Some("127.0.0.1:8080".parse().expect("addr"))
    );
    assert_eq!(
        reports[0].server_to_client,
        (Some(ConnId(0)), StreamState::Closed)
    );
    assert_eq!(
        reports[0].client_to_server,
        (None, StreamState::NotSelected)
    );
}

#[test]
fn real_capture_filtered_by_another_port_yields_nothing() {
    let config = PcapConfig {
        filter: CaptureFilter {
            ports: vec![443],
            ..CaptureFilter::default()
        },
        ..PcapConfig::default()
    };
    let Some((records, source)) = real("websocket_baseline.pcap", config) else {
        return;
    };
    assert!(records.is_empty());
    assert_eq!(source.stats().filtered_out, 15);
}

// ---------------------------------------------------------------------------------------------
// Generated captures.

const T0: u64 = 1_723_161_600_000_000_000; // 2024-08-09 00:00:00 UTC
const SERVER_KEY: Option<[u8; 4]> = None;
const CLIENT_KEY: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// How packets are framed on the link.
#[derive(Debug, Clone, Copy)]
enum Link {
    Ethernet(&'static [u16]),
    Sll,
    Sll2,
}

impl Link {
    fn code(self) -> u16 {
        match self {
            Link::Ethernet(_) => ETHERNET,
            Link::Sll => LINUX_SLL,
            Link::Sll2 => LINUX_SLL2,
        }
    }

    fn wrap(self, seg: &Segment) -> Vec<u8> {
        let ip = seg.ip();
        match self {
            Link::Ethernet(tags) => ethernet(tags, &ip),
            Link::Sll => sll(&ip),
            Link::Sll2 => sll2(&ip),
        }
    }
}

/// Packets as (capture time, segment), in capture order.
type Packets = Vec<(u64, Segment)>;

/// Expected records as (time, connection, kind, meta, payload).
type Expected = Vec<(u64, u16, RecordKind, &'static str, Vec<u8>)>;

fn pcap_file(big_endian: bool, nanos: bool, link: Link, packets: &Packets) -> Vec<u8> {
    let mut w = CaptureWriter::pcap(big_endian, nanos, link.code());
    for (t, seg) in packets {
        w.packet(0, *t, &link.wrap(seg));
    }
    w.finish()
}

fn pcapng_file(big_endian: bool, tsresol: Option<u8>, link: Link, packets: &Packets) -> Vec<u8> {
    let mut w = CaptureWriter::pcapng(big_endian);
    // An interface nobody uses first, so packets must pick theirs by id.
    w.interface(LINUX_SLL, None);
    let iface = w.interface(link.code(), tsresol);
    w.unknown_block();
    for (t, seg) in packets {
        w.packet(iface, *t, &link.wrap(seg));
    }
    w.finish()
}

/// Handshake packets from `t` on: SYN, SYN-ACK, ACK, GET, 101 (1 µs apart). Returns the time of
/// the 101.
fn upgrade(
    flow: &mut Flow,
    packets: &mut Packets,
    t: u64,
    host: &str,
    path: &str,
    ext: Option<&str>,
) -> u64 {
    for (i, seg) in flow.open().into_iter().enumerate() {
        packets.push((t + i as u64 * 1_000, seg));
    }
    packets.push((t + 3_000, flow.client(&upgrade_request(host, path))));
    packets.push((t + 4_000, flow.server(&upgrade_response(101, ext))));
    t + 4_000
}

fn default_flow() -> Flow {
    Flow::new("10.1.2.3:51000", "52.68.1.9:9443", 0xffff_f000, 0x1234_5678)
}

/// A session exercising the frame encodings; returns the packets and the records expected with
/// both directions replayed (control frames as records).
fn encodings_session(flow: &mut Flow) -> (Packets, Expected) {
    let mut p = Packets::new();
    let t = upgrade(
        flow,
        &mut p,
        T0,
        "stream.binance.com:9443",
        "/ws/btcusdt@depth",
        None,
    );
    let url = "ws://stream.binance.com:9443/ws/btcusdt@depth";
    let mut want = vec![
        (t, 0, RecordKind::Connect, url, vec![]),
        (t, 1, RecordKind::Connect, url, vec![]),
    ];
    // Client subscription, masked.
    let sub = br#"{"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":1}"#.to_vec();
    p.push((
        T0 + 10_000,
        flow.client(&ws_frame(true, false, 1, &sub, CLIENT_KEY)),
    ));
    want.push((T0 + 10_000, 1, RecordKind::Frame, "", sub));
    // 7-bit length.
    p.push((
        T0 + 20_000,
        flow.server(&ws_frame(
            true,
            false,
            1,
            b"{\"result\":null,\"id\":1}",
            SERVER_KEY,
        )),
    ));
    want.push((
        T0 + 20_000,
        0,
        RecordKind::Frame,
        "",
        b"{\"result\":null,\"id\":1}".to_vec(),
    ));
    // 16-bit length.
    let medium: Vec<u8> = (0..300u32).map(|i| b'a' + (i % 26) as u8).collect();
    p.push((
        T0 + 30_000,
        flow.server(&ws_frame(true, false, 2, &medium, SERVER_KEY)),
    ));
    want.push((T0 + 30_000, 0, RecordKind::Frame, "", medium));
    // 64-bit length (70 000 bytes), carried by 50 segments of 1 400 bytes and one more.
    let large: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let bytes = ws_frame(true, false, 2, &large, SERVER_KEY);
    let mut t_seg = T0 + 40_000;
    for chunk in bytes.chunks(1_400) {
        p.push((t_seg, flow.server(chunk)));
        t_seg += 1_000;
    }
    want.push((t_seg - 1_000, 0, RecordKind::Frame, "", large));
    // A small payload with a (non-minimal) 64-bit length is still decoded.
    p.push((
        T0 + 200_000,
        flow.server(&ws_frame_with(true, false, 1, b"tiny", SERVER_KEY, true)),
    ));
    want.push((T0 + 200_000, 0, RecordKind::Frame, "", b"tiny".to_vec()));
    // A ping and the client's masked pong.
    p.push((
        T0 + 210_000,
        flow.server(&ws_frame(true, false, 9, b"hb", SERVER_KEY)),
    ));
    want.push((T0 + 210_000, 0, RecordKind::Frame, "ping", b"hb".to_vec()));
    p.push((
        T0 + 211_000,
        flow.client(&ws_frame(true, false, 10, b"hb", CLIENT_KEY)),
    ));
    want.push((T0 + 211_000, 1, RecordKind::Frame, "pong", b"hb".to_vec()));
    (p, want)
}

fn expect(
    want: &[(u64, u16, RecordKind, &'static str, Vec<u8>)],
    round: impl Fn(u64) -> u64,
) -> Vec<Rec> {
    want.iter()
        .map(|(t, c, k, m, p)| rec(round(*t), *c, *k, m, p))
        .collect()
}

#[test]
fn containers_links_and_frame_lengths() {
    let (packets, want) = encodings_session(&mut default_flow());
    let (v6_packets, v6_want) = encodings_session(&mut Flow::new(
        "[2001:db8::10]:51000",
        "[2001:db8::1]:9443",
        7,
        0x8000_0000,
    ));
    let micros = |t: u64| t / 1_000 * 1_000;
    let exact = |t: u64| t;
    // if_tsresol 2^-20 s: the writer floors to units, the reader floors back to ns.
    let binary = |t: u64| (((u128::from(t) << 20) / 1_000_000_000 * 1_000_000_000) >> 20) as u64;
    let cases: Vec<(&str, Vec<u8>, Vec<Rec>)> = vec![
        (
            "pcap le us ethernet",
            pcap_file(false, false, Link::Ethernet(&[]), &packets),
            expect(&want, micros),
        ),
        (
            "pcap be ns qinq",
            pcap_file(true, true, Link::Ethernet(&[100, 200]), &packets),
            expect(&want, exact),
        ),
        (
            "pcap le ns sll",
            pcap_file(false, true, Link::Sll, &packets),
            expect(&want, exact),
        ),
        (
            "pcapng le us sll2",
            pcapng_file(false, None, Link::Sll2, &packets),
            expect(&want, micros),
        ),
        (
            "pcapng be ns ipv6 sll2",
            pcapng_file(true, Some(9), Link::Sll2, &v6_packets),
            expect(&v6_want, exact),
        ),
        (
            "pcapng le 2^-20 ipv6 vlan",
            pcapng_file(false, Some(0x80 | 20), Link::Ethernet(&[7]), &v6_packets),
            expect(&v6_want, binary),
        ),
    ];
    for (name, bytes, expected) in cases {
        let (records, source) = replay(bytes, both_directions());
        assert_eq!(records, expected, "{name}");
        let s = source.stats();
        assert_eq!(
            (s.messages, s.control_frames, s.gaps, s.bad_frames),
            (5, 2, 0, 0),
            "{name}"
        );
        assert_eq!(source.connections().len(), 2, "{name}");
        assert_eq!(
            source.connections()[0].venue,
            Some(Venue::BinanceSpot),
            "{name}"
        );
    }
}

#[test]
fn reordered_retransmitted_and_overlapping_segments_reassemble() {
    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(&mut flow, &mut p, T0, "h", "/", None);
    // Not periodic, so bytes delivered at a wrong offset cannot look right.
    let message: Vec<u8> = (0..3_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let bytes = ws_frame(true, false, 1, &message, SERVER_KEY);
    let base = flow.server_seq;
    let at = |off: usize, len: usize| {
        let mut f = flow.clone();
        f.server_seq = base.wrapping_add(off as u32);
        f.seg(
            false,
            ACK | PSH,
            bytes[off..(off + len).min(bytes.len())].to_vec(),
        )
    };
    let last = bytes.len() - 2_000;
    p.push((T0 + 10_000, at(2_000, last))); // tail first: out of order
    p.push((T0 + 11_000, at(0, 1_000))); // head
    p.push((T0 + 12_000, at(0, 1_000))); // retransmission of the head
    p.push((T0 + 13_000, at(900, 1_100))); // overlaps the head, fills the hole
    p.push((T0 + 14_000, at(1_500, 800))); // late duplicate inside delivered data
    flow.server_seq = base.wrapping_add(bytes.len() as u32);
    p.push((
        T0 + 15_000,
        flow.server(&ws_frame(true, false, 1, b"after", SERVER_KEY)),
    ));
    let (records, source) = replay(
        pcap_file(false, true, Link::Ethernet(&[]), &p),
        PcapConfig::default(),
    );
    assert_eq!(
        records,
        vec![
            rec(T0 + 4_000, 0, RecordKind::Connect, "ws://h/", b""),
            frame(T0 + 13_000, 0, &message),
            frame(T0 + 15_000, 0, b"after"),
        ]
    );
    let s = source.stats();
    assert_eq!(
        (s.out_of_order, s.retransmits, s.overlaps, s.gaps),
        (1, 2, 1, 0)
    );
}

/// A session with four server messages; the segment of message `lost` is left out.
fn session_with_loss(lost: usize) -> (Packets, Vec<Vec<u8>>) {
    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(&mut flow, &mut p, T0, "h", "/", None);
    let messages: Vec<Vec<u8>> = (0..4)
        .map(|i| format!("message {i}").into_bytes())
        .collect();
    for (i, m) in messages.iter().enumerate() {
        let seg = flow.server(&ws_frame(true, false, 1, m, SERVER_KEY));
        if i != lost {
            p.push((T0 + 10_000 * (i as u64 + 1), seg));
        }
    }
    (p, messages)
}

#[test]
fn a_hole_never_filled_ends_the_direction_with_a_gap() {
    let (p, messages) = session_with_loss(1);
    let (records, source) = replay(
        pcap_file(false, true, Link::Ethernet(&[]), &p),
        PcapConfig::default(),
    );
    assert_eq!(
        records,
        vec![
            rec(T0 + 4_000, 0, RecordKind::Connect, "ws://h/", b""),
            frame(T0 + 10_000, 0, &messages[0]),
            // Found at the end of the capture: messages 2 and 3 wait behind the hole.
            rec(T0 + 40_000, 0, RecordKind::Gap, "", b""),
        ]
    );
    assert_eq!((source.stats().gaps, source.stats().out_of_order), (1, 2));
    assert_eq!(
        source.tcp_connections()[0].server_to_client,
        (Some(ConnId(0)), StreamState::Gap)
    );
}

#[test]
fn a_hole_is_declared_lost_when_the_buffer_fills_and_late_data_is_not_used() {
    let (mut p, messages) = session_with_loss(1);
    // The lost segment turns up after the buffer gave up on it.
    let mut flow = default_flow();
    let mut scratch = Packets::new();
    upgrade(&mut flow, &mut scratch, T0, "h", "/", None);
    let _first = flow.server(&ws_frame(true, false, 1, &messages[0], SERVER_KEY));
    p.push((
        T0 + 50_000,
        flow.server(&ws_frame(true, false, 1, &messages[1], SERVER_KEY)),
    ));
    let config = PcapConfig {
        max_out_of_order: 24,
        ..PcapConfig::default()
    };
    let (records, source) = replay(pcap_file(false, true, Link::Ethernet(&[]), &p), config);
    assert_eq!(
        records,
        vec![
            rec(T0 + 4_000, 0, RecordKind::Connect, "ws://h/", b""),
            frame(T0 + 10_000, 0, &messages[0]),
            // Message 3's segment ends beyond 24 bytes past the hole.
            rec(T0 + 40_000, 0, RecordKind::Gap, "", b""),
        ]
    );
    assert_eq!(source.stats().gaps, 1);
}

#[test]
fn a_hole_open_too_long_is_lost() {
    let (mut p, messages) = session_with_loss(1);
    let mut flow = default_flow();
    let mut scratch = Packets::new();
    upgrade(&mut flow, &mut scratch, T0, "h", "/", None);
    for m in &messages {
        let _ = flow.server(&ws_frame(true, false, 1, m, SERVER_KEY));
    }
    // Three seconds later, more data: the hole has been open past the 2 s default.
    p.push((
        T0 + 3_000_000_000,
        flow.server(&ws_frame(true, false, 1, b"late", SERVER_KEY)),
    ));
    let (records, _) = replay(
        pcap_file(false, true, Link::Ethernet(&[]), &p),
        PcapConfig::default(),
    );
    assert_eq!(
        records.last(),
        Some(&rec(T0 + 3_000_000_000, 0, RecordKind::Gap, "", b""))
    );
    assert_eq!(records.len(), 3);
}

#[test]
fn data_acknowledged_but_never_captured_is_a_gap() {
    // The last message's segment is missing, but the client acknowledged it.
    let (mut p, messages) = session_with_loss(3);
    let mut flow = default_flow();
    let mut scratch = Packets::new();
    upgrade(&mut flow, &mut scratch, T0, "h", "/", None);
    for m in &messages {
        let _ = flow.server(&ws_frame(true, false, 1, m, SERVER_KEY));
    }
    p.push((T0 + 60_000, flow.seg(true, ACK, vec![])));
    let (records, _) = replay(
        pcap_file(false, true, Link::Ethernet(&[]), &p),
        PcapConfig::default(),
    );
    let frames: Vec<&[u8]> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Frame)
        .map(|r| &r.payload[..])
        .collect();
    assert_eq!(
        frames,
        vec![&messages[0][..], &messages[1][..], &messages[2][..]]
    );
    assert_eq!(
        records.last(),
        Some(&rec(T0 + 60_000, 0, RecordKind::Gap, "", b""))
    );
}

#[test]
fn a_capture_starting_mid_stream_is_unusable() {
    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(&mut flow, &mut p, T0, "h", "/", None);
    p.clear(); // the capture starts after the upgrade
    for i in 0..3u64 {
        p.push((
            T0 + i,
            flow.server(&ws_frame(true, false, 1, b"{\"e\":1}", SERVER_KEY)),
        ));
    }
    let (records, source) = replay(
        pcap_file(false, true, Link::Ethernet(&[]), &p),
        PcapConfig::default(),
    );
    assert!(records.is_empty());
    assert_eq!(source.stats().unusable, 1);
    let report = &source.tcp_connections()[0];
    assert_eq!(
        report.server_to_client.1,
        StreamState::Unusable(Unusable::MidStream)
    );
}

#[test]
fn a_capture_starting_at_the_upgrade_without_syn_is_accepted() {
    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(&mut flow, &mut p, T0, "h", "/stream", None);
    p.drain(..3); // no SYN, SYN-ACK, ACK
    p.push((
        T0 + 10_000,
        flow.server(&ws_frame(true, false, 1, b"ok", SERVER_KEY)),
    ));
    let (records, _) = replay(
        pcap_file(false, true, Link::Ethernet(&[]), &p),
        PcapConfig::default(),
    );
    assert_eq!(
        records,
        vec![
            rec(T0 + 4_000, 0, RecordKind::Connect, "ws://h/stream", b""),
            frame(T0 + 10_000, 0, b"ok")
        ]
    );
}

#[test]
fn a_refused_upgrade_is_unusable() {
    let mut flow = default_flow();
    let mut p = Packets::new();
    for (i, seg) in flow.open().into_iter().enumerate() {
        p.push((T0 + i as u64, seg));
    }
    p.push((T0 + 10, flow.client(&upgrade_request("h", "/"))));
    p.push((T0 + 20, flow.server(&upgrade_response(403, None))));
    p.push((
        T0 + 30,
        flow.server(&ws_frame(true, false, 1, b"not a frame", SERVER_KEY)),
    ));
    let (records, source) = replay(
        pcap_file(false, true, Link::Ethernet(&[]), &p),
        both_directions(),
    );
    assert!(records.is_empty());
    let report = &source.tcp_connections()[0];
    let refused = StreamState::Unusable(Unusable::NotUpgraded { status: 403 });
    assert_eq!(
        (report.server_to_client.1, report.client_to_server.1),
        (refused, refused)
    );
    assert_eq!(report.url.as_deref(), Some("ws://h/"));
}

#[test]
fn fragmented_messages_with_an_interleaved_ping() {
    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(&mut flow, &mut p, T0, "h", "/", None);
    let mut bytes = ws_frame(false, false, 1, b"{\"a\":", SERVER_KEY);
    bytes.extend(ws_frame(true, false, 9, b"ping!", SERVER_KEY));
    bytes.extend(ws_frame(false, false, 0, b"[1,2,", SERVER_KEY));
    p.push((T0 + 10_000, flow.server(&bytes)));
    p.push((
        T0 + 20_000,
        flow.server(&ws_frame(true, false, 0, b"3]}", SERVER_KEY)),
    ));
    // The client's masked message, fragmented too.
    let mut client = ws_frame(false, false, 2, &[1, 2, 3], CLIENT_KEY);
    client.extend(ws_frame(true, false, 0, &[4, 5], Some([9, 8, 7, 6])));
    p.push((T0 + 30_000, flow.client(&client)));
    let file = pcap_file(true, false, Link::Ethernet(&[42]), &p);

    let (records, source) = replay(file.clone(), PcapConfig::default());
    assert_eq!(
        records,
        vec![
            rec(T0 + 4_000, 0, RecordKind::Connect, "ws://h/", b""),
            frame(T0 + 20_000, 0, b"{\"a\":[1,2,3]}")
        ]
    );
    assert_eq!(source.stats().control_frames, 1);

    let client_only = PcapConfig {
        filter: CaptureFilter {
            directions: DirectionFilter::ClientToServer,
            ..CaptureFilter::default()
        },
        ..PcapConfig::default()
    };
    let (records, _) = replay(file.clone(), client_only);
    assert_eq!(
        records,
        vec![
            rec(T0 + 4_000, 0, RecordKind::Connect, "ws://h/", b""),
            frame(T0 + 30_000, 0, &[1, 2, 3, 4, 5])
        ]
    );

    let (records, _) = replay(file, both_directions());
    assert_eq!(
        records[2..],
        [
            rec(T0 + 10_000, 0, RecordKind::Frame, "ping", b"ping!"),
            frame(T0 + 20_000, 0, b"{\"a\":[1,2,3]}"),
            frame(T0 + 30_000, 1, &[1, 2, 3, 4, 5]),
        ]
    );
}

fn deflate_session(ext: &str, reset_each_message: bool) {
    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(&mut flow, &mut p, T0, "h", "/", Some(ext));
    let mut server = Deflater::new(reset_each_message);
    let mut client = Deflater::new(reset_each_message);
    let msg = |i: u32| {
        format!(r#"{{"e":"depthUpdate","E":{i},"s":"BTCUSDT","b":[["61000.10","0.5"]],"a":[["61000.20","1.25"]]}}"#)
            .into_bytes()
    };
    let (m1, m2, m3) = (msg(1), msg(2), msg(3));
    let c1 = server.compress(&m1);
    let c2 = server.compress(&m2);
    if reset_each_message {
        assert_eq!(c1.len(), c2.len(), "without context both compress alike");
    } else {
        assert!(
            c2.len() < c1.len() / 2,
            "the second message refers back to the first"
        );
    }
    p.push((
        T0 + 10_000,
        flow.server(&ws_frame(true, true, 1, &c1, SERVER_KEY)),
    ));
    p.push((
        T0 + 20_000,
        flow.server(&ws_frame(true, true, 1, &c2, SERVER_KEY)),
    ));
    // An uncompressed message in between (RSV1 clear) leaves the context alone.
    p.push((
        T0 + 30_000,
        flow.server(&ws_frame(true, false, 1, b"plain", SERVER_KEY)),
    ));
    // A compressed message in two fragments: RSV1 on the first only.
    let c3 = server.compress(&m3);
    let (a, b) = c3.split_at(c3.len() / 2);
    let mut bytes = ws_frame(false, true, 1, a, SERVER_KEY);
    bytes.extend(ws_frame(true, false, 0, b, SERVER_KEY));
    p.push((T0 + 40_000, flow.server(&bytes)));
    // The client's compressed, masked message, with its own context.
    let sub = br#"{"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":1}"#;
    p.push((
        T0 + 50_000,
        flow.client(&ws_frame(true, true, 1, &client.compress(sub), CLIENT_KEY)),
    ));
    p.push((
        T0 + 60_000,
        flow.client(&ws_frame(true, true, 1, &client.compress(sub), CLIENT_KEY)),
    ));
    let (records, source) = replay(
        pcapng_file(false, Some(9), Link::Ethernet(&[]), &p),
        both_directions(),
    );
    assert_eq!(
        records[2..],
        [
            frame(T0 + 10_000, 0, &m1),
            frame(T0 + 20_000, 0, &m2),
            frame(T0 + 30_000, 0, b"plain"),
            frame(T0 + 40_000, 0, &m3),
            frame(T0 + 50_000, 1, sub),
            frame(T0 + 60_000, 1, sub),
        ],
        "{ext}"
    );
    assert_eq!((source.stats().bad_frames, source.stats().gaps), (0, 0));
}

#[test]
fn permessage_deflate_with_context_takeover() {
    deflate_session("permessage-deflate; client_max_window_bits=15", false);
}

#[test]
fn permessage_deflate_without_context_takeover() {
    deflate_session(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        true,
    );
}

#[test]
fn oversize_messages_are_dropped_and_counted() {
    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(&mut flow, &mut p, T0, "h", "/", None);
    p.push((
        T0 + 10_000,
        flow.server(&ws_frame(true, false, 2, &[0u8; 5_000], SERVER_KEY)),
    ));
    p.push((
        T0 + 20_000,
        flow.server(&ws_frame(true, false, 1, b"fits", SERVER_KEY)),
    ));
    let config = PcapConfig {
        max_message: 1_000,
        ..PcapConfig::default()
    };
    let (records, source) = replay(pcap_file(false, true, Link::Ethernet(&[]), &p), config);
    assert_eq!(records[1..], [frame(T0 + 20_000, 0, b"fits")]);
    assert_eq!(source.stats().oversize_messages, 1);
}

#[test]
fn connections_are_filtered_by_port_and_named_by_their_upgrade() {
    let mut binance = default_flow();
    let mut bybit = Flow::new("10.1.2.3:51001", "13.230.1.1:443", 100, 200);
    let mut p = Packets::new();
    upgrade(
        &mut binance,
        &mut p,
        T0,
        "fstream.binance.com",
        "/ws/btcusdt@depth@0ms",
        None,
    );
    upgrade(
        &mut bybit,
        &mut p,
        T0 + 100_000,
        "stream.bybit.com",
        "/v5/public/linear",
        None,
    );
    p.push((
        T0 + 200_000,
        binance.server(&ws_frame(true, false, 1, b"binance", SERVER_KEY)),
    ));
    p.push((
        T0 + 200_001,
        bybit.server(&ws_frame(true, false, 1, b"bybit", SERVER_KEY)),
    ));
    let file = pcap_file(false, true, Link::Sll2, &p);

    let (records, source) = replay(file.clone(), PcapConfig::default());
    let frames: Vec<(u16, &[u8])> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Frame)
        .map(|r| (r.conn, &r.payload[..]))
        .collect();
    assert_eq!(frames, vec![(0, &b"binance"[..]), (1, &b"bybit"[..])]);
    let venues: Vec<Option<Venue>> = source.connections().iter().map(|c| c.venue).collect();
    assert_eq!(
        venues,
        vec![Some(Venue::BinanceUsdm), Some(Venue::BybitLinear)]
    );

    let config = PcapConfig {
        filter: CaptureFilter {
            ports: vec![443],
            ..CaptureFilter::default()
        },
        ..PcapConfig::default()
    };
    let (records, source) = replay(file, config);
    assert_eq!(records[1..], [frame(T0 + 200_001, 0, b"bybit")]);
    assert_eq!(source.connections().len(), 1);
    assert!(
        source.connections()[0]
            .url
            .starts_with("ws://stream.bybit.com/v5/public/linear ")
    );
}

#[test]
fn pcapng_sections_and_simple_packet_blocks() {
    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(&mut flow, &mut p, T0, "h", "/", None);
    let mut w = CaptureWriter::pcapng(false);
    let iface = w.interface(ETHERNET, Some(9));
    for (t, seg) in &p {
        w.packet(iface, *t, &ethernet(&[], &seg.ip()));
    }
    // A second section in the other byte order: interface ids start again, the connection goes on.
    let mut w2 = CaptureWriter::pcapng(true);
    w2.interface(ETHERNET, Some(9));
    w2.packet(
        0,
        T0 + 10_000,
        &ethernet(
            &[],
            &flow
                .server(&ws_frame(true, false, 1, b"one", SERVER_KEY))
                .ip(),
        ),
    );
    // No timestamp in a simple packet block: it takes the last one seen.
    w2.simple_packet(&ethernet(
        &[],
        &flow
            .server(&ws_frame(true, false, 1, b"two", SERVER_KEY))
            .ip(),
    ));
    let mut file = w.finish();
    file.extend(w2.finish());
    let (records, _) = replay(file, PcapConfig::default());
    assert_eq!(
        records[1..],
        [frame(T0 + 10_000, 0, b"one"), frame(T0 + 10_000, 0, b"two")]
    );
}

#[test]
fn fin_and_rst_end_the_stream_with_a_disconnect() {
    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(&mut flow, &mut p, T0, "h", "/", None);
    let mut last = flow.server(&ws_frame(true, false, 1, b"bye", SERVER_KEY));
    last.flags |= FIN;
    p.push((T0 + 10_000, last));
    let (records, _) = replay(
        pcap_file(false, true, Link::Ethernet(&[]), &p),
        PcapConfig::default(),
    );
    assert_eq!(
        records[1..],
        [
            frame(T0 + 10_000, 0, b"bye"),
            rec(T0 + 10_000, 0, RecordKind::Disconnect, "", b"")
        ]
    );

    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(&mut flow, &mut p, T0, "h", "/", None);
    p.push((
        T0 + 10_000,
        flow.server(&ws_frame(true, false, 1, b"x", SERVER_KEY)),
    ));
    p.push((T0 + 20_000, flow.seg(true, RST, vec![])));
    p.push((
        T0 + 30_000,
        flow.server(&ws_frame(true, false, 1, b"after reset", SERVER_KEY)),
    ));
    let (records, _) = replay(
        pcap_file(false, true, Link::Ethernet(&[]), &p),
        PcapConfig::default(),
    );
    assert_eq!(
        records[1..],
        [
            frame(T0 + 10_000, 0, b"x"),
            rec(T0 + 20_000, 0, RecordKind::Disconnect, "", b"")
        ]
    );
}

#[test]
fn corrupt_containers_are_typed_errors() {
    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(&mut flow, &mut p, T0, "h", "/", None);
    let file = pcap_file(false, true, Link::Ethernet(&[]), &p);
    let cut = file.len() - 10;
    let mut source =
        PcapSource::new(Cursor::new(file[..cut].to_vec()), PcapConfig::default()).expect("header");
    let err = loop {
        match source.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a cut file must not end cleanly"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, SourceError::Truncated { format: "pcap", .. }),
        "{err}"
    );

    let mut ng = pcapng_file(false, None, Link::Ethernet(&[]), &p);
    let last_len = ng.len() - 4;
    ng[last_len] ^= 0x40; // trailing length no longer matches the leading one
    let mut source = PcapSource::new(Cursor::new(ng), PcapConfig::default()).expect("header");
    let err = loop {
        match source.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a corrupt block must be reported"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            err,
            SourceError::Format {
                format: "pcapng",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_reused_port_starts_a_new_connection() {
    let mut first = default_flow();
    let mut p = Packets::new();
    upgrade(&mut first, &mut p, T0, "h", "/one", None);
    p.push((
        T0 + 10_000,
        first.server(&ws_frame(true, false, 1, b"first", SERVER_KEY)),
    ));
    p.push((T0 + 11_000, first.server_fin()));
    // Same addresses and ports, new initial sequence numbers.
    let mut second = Flow::new("10.1.2.3:51000", "52.68.1.9:9443", 0x0100_0000, 0x0200_0000);
    upgrade(&mut second, &mut p, T0 + 20_000, "h", "/two", None);
    p.push((
        T0 + 30_000,
        second.server(&ws_frame(true, false, 1, b"second", SERVER_KEY)),
    ));
    let (records, source) = replay(
        pcap_file(false, true, Link::Ethernet(&[]), &p),
        PcapConfig::default(),
    );
    assert_eq!(
        records,
        vec![
            rec(T0 + 4_000, 0, RecordKind::Connect, "ws://h/one", b""),
            frame(T0 + 10_000, 0, b"first"),
            rec(T0 + 11_000, 0, RecordKind::Disconnect, "", b""),
            rec(T0 + 24_000, 1, RecordKind::Connect, "ws://h/two", b""),
            frame(T0 + 30_000, 1, b"second"),
        ]
    );
    assert_eq!(source.tcp_connections().len(), 2);
}

#[test]
fn a_capture_of_the_server_side_only_is_decoded() {
    let mut flow = default_flow();
    let mut all = Packets::new();
    upgrade(&mut flow, &mut all, T0, "h", "/", None);
    all.push((
        T0 + 10_000,
        flow.server(&ws_frame(true, false, 1, b"data", SERVER_KEY)),
    ));
    all.push((
        T0 + 11_000,
        flow.client(&ws_frame(true, false, 1, b"up", CLIENT_KEY)),
    ));
    let server_only: Packets = all
        .into_iter()
        .filter(|(_, s)| s.src == flow.server)
        .collect();
    let (records, source) = replay(
        pcap_file(false, true, Link::Ethernet(&[]), &server_only),
        both_directions(),
    );
    assert_eq!(
        records,
        vec![
            rec(T0 + 4_000, 0, RecordKind::Connect, "", b""),
            rec(T0 + 4_000, 1, RecordKind::Connect, "", b""),
            frame(T0 + 10_000, 0, b"data"),
        ]
    );
    assert_eq!(
        source.connections()[0].url,
        "tcp 52.68.1.9:9443 -> 10.1.2.3:51000 (server->client)"
    );
    assert_eq!(source.connections()[0].venue, None);
}

/// Counts this thread's allocations (tests run on several threads; each counts its own).
#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

#[test]
fn replay_allocates_nothing_once_warm() {
    let before = pinion_testkit::alloc::thread_allocations();
    let probe = std::hint::black_box(vec![1u8; 64]);
    assert!(
        pinion_testkit::alloc::thread_allocations() > before,
        "the counter sees allocations"
    );
    drop(probe);
    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(
        &mut flow,
        &mut p,
        T0,
        "h",
        "/",
        Some("permessage-deflate; client_max_window_bits"),
    );
    let mut deflater = Deflater::new(false);
    let mut t = T0 + 10_000;
    const BLOCKS: u64 = 200;
    for block in 0..BLOCKS {
        let mut next = |seg: Segment| {
            t += 1_000;
            p.push((t, seg));
        };
        // A plain message, a fragmented one with a ping inside, a compressed one.
        next(flow.server(&ws_frame(true, false, 1, &[b'x'; 200], SERVER_KEY)));
        let mut bytes = ws_frame(false, false, 1, &[b'a'; 100], SERVER_KEY);
        bytes.extend(ws_frame(true, false, 9, b"hb", SERVER_KEY));
        bytes.extend(ws_frame(true, false, 0, &[b'b'; 100], SERVER_KEY));
        next(flow.server(&bytes));
        let json = format!(
            r#"{{"e":"depthUpdate","E":{:06},"b":[["61000.10","0.5"]]}}"#,
            block
        );
        let z = deflater.compress(json.as_bytes());
        next(flow.server(&ws_frame(true, true, 1, &z, SERVER_KEY)));
        // A 5 000-byte message in four segments, the last two swapped.
        let big = ws_frame(true, false, 2, &[7u8; 5_000], SERVER_KEY);
        let base = flow.server_seq;
        let part = |from: usize, to: usize| {
            let mut f = flow.clone();
            f.server_seq = base.wrapping_add(from as u32);
            f.seg(false, ACK, big[from..to.min(big.len())].to_vec())
        };
        let (a, b, c, d) = (
            part(0, 1_400),
            part(1_400, 2_800),
            part(2_800, 4_200),
            part(4_200, 9_999),
        );
        next(a);
        next(b);
        next(d);
        next(c);
        flow.server_seq = base.wrapping_add(big.len() as u32);
    }
    let file = pcap_file(false, true, Link::Ethernet(&[]), &p);
    let mut source = PcapSource::new(Cursor::new(file), PcapConfig::default()).expect("header");
    let mut records = 0u64;
    let mut warm_allocations = 0;
    while let Some(r) = source.next_record().expect("record") {
        assert!(r.kind == RecordKind::Connect || !r.payload.is_empty());
        records += 1;
        if records == 1 + 4 * 3 {
            // Three blocks in: every buffer has grown to its working size.
            warm_allocations = pinion_testkit::alloc::thread_allocations();
        }
    }
    let steady = pinion_testkit::alloc::thread_allocations() - warm_allocations;
    assert_eq!(records, 1 + 4 * BLOCKS);
    assert_eq!(source.stats().out_of_order, BLOCKS);
    assert_eq!(
        steady,
        0,
        "allocations after warm-up over {} records",
        records - 13
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// The server's messages as one byte stream, and the messages.
    fn server_stream(sizes: &[usize]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut stream = Vec::new();
        let mut messages = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let m: Vec<u8> = (0..n)
                .map(|j| {
                    ((i * 7_919 + j) as u32)
                        .wrapping_mul(2_654_435_761)
                        .to_be_bytes()[0]
                })
                .collect();
            if i % 3 == 2 && n > 2 {
                // Every third message in two fragments.
                stream.extend(ws_frame(false, false, 2, &m[..n / 2], SERVER_KEY));
                stream.extend(ws_frame(true, false, 0, &m[n / 2..], SERVER_KEY));
            } else {
                stream.extend(ws_frame(true, false, 2, &m, SERVER_KEY));
            }
            messages.push(m);
        }
        (stream, messages)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// However the stream is cut into segments, reordered (within a window) and partly
        /// sent twice, the messages come out exactly once, in order.
        #[test]
        fn any_segmentation_and_reordering_gives_the_same_messages(
            sizes in prop::collection::vec(0usize..3_000, 1..12),
            cuts in prop::collection::vec(1usize..1_500, 1..64),
            swaps in prop::collection::vec((0usize..64, 1usize..4), 0..16),
            dups in prop::collection::vec((0usize..40_000, 1usize..2_000, 0usize..64), 0..8),
        ) {
            let mut flow = default_flow();
            let mut p = Packets::new();
            upgrade(&mut flow, &mut p, T0, "h", "/", None);
            let (stream, messages) = server_stream(&sizes);
            let base = flow.server_seq;
            let mut segments = Vec::new();
            let (mut at, mut i) = (0usize, 0usize);
            while at < stream.len() {
                let end = (at + cuts[i % cuts.len()]).min(stream.len());
                let mut f = flow.clone();
                f.server_seq = base.wrapping_add(at as u32);
                segments.push(f.seg(false, ACK, stream[at..end].to_vec()));
                at = end;
                i += 1;
            }
            for (from, distance) in swaps {
                let from = from % segments.len();
                let to = (from + distance).min(segments.len() - 1);
                segments.swap(from, to);
            }
            // Retransmissions cut differently from the originals: they overlap them partly.
            for (start, len, position) in dups {
                let start = start % stream.len().max(1);
                let end = (start + len).min(stream.len());
                let mut f = flow.clone();
                f.server_seq = base.wrapping_add(start as u32);
                let seg = f.seg(false, ACK, stream[start..end].to_vec());
                segments.insert(position % (segments.len() + 1), seg);
            }
            for (k, seg) in segments.into_iter().enumerate() {
                p.push((T0 + 10_000 + k as u64, seg));
            }
            let (records, source) = replay(pcap_file(false, true, Link::Ethernet(&[]), &p), PcapConfig::default());
            let frames: Vec<Vec<u8>> =
                records.into_iter().filter(|r| r.kind == RecordKind::Frame).map(|r| r.payload).collect();
            prop_assert_eq!(frames, messages);
            prop_assert_eq!(source.stats().gaps, 0);
        }

        /// Arbitrary bytes where WebSocket frames should be never panic and never stall.
        #[test]
        fn garbage_after_the_upgrade_is_survived(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
        ) {
            let mut flow = default_flow();
            let mut p = Packets::new();
            upgrade(&mut flow, &mut p, T0, "h", "/", Some("permessage-deflate"));
            for (k, chunk) in chunks.iter().enumerate() {
                p.push((T0 + 10_000 + k as u64, flow.server(chunk)));
            }
            let (records, _) = replay(pcap_file(false, true, Link::Ethernet(&[]), &p), both_directions());
            prop_assert_eq!(records[0].kind, RecordKind::Connect);
        }

        /// Arbitrary bytes as a capture file are an error or a clean end, never a panic.
        #[test]
        fn garbage_captures_are_errors_not_panics(
            head in 0usize..4,
            body in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            let magic: [&[u8]; 4] = [
                &[0xd4, 0xc3, 0xb2, 0xa1],
                &[0xa1, 0xb2, 0x3c, 0x4d],
                &[0x0a, 0x0d, 0x0d, 0x0a],
                &[0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0],
            ];
            let mut file = magic[head].to_vec();
            file.extend(body);
            if let Ok(mut source) = PcapSource::new(Cursor::new(file), both_directions()) {
                for _ in 0..10_000 {
                    match source.next_record() {
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
    }
}

#[test]
fn a_tls_session_is_refused_at_once() {
    let mut flow = default_flow();
    let mut p = Packets::new();
    for (i, seg) in flow.open().into_iter().enumerate() {
        p.push((T0 + i as u64, seg));
    }
    // A TLS ClientHello and ServerHello record header: not an HTTP upgrade.
    p.push((T0 + 10, flow.client(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])));
    p.push((T0 + 20, flow.server(&[0x16, 0x03, 0x03, 0x00, 0x7a, 0x02])));
    let (records, source) = replay(
        pcap_file(false, true, Link::Ethernet(&[]), &p),
        PcapConfig::default(),
    );
    assert!(records.is_empty());
    let not_http = StreamState::Unusable(Unusable::BadHandshake(HandshakeError::NotHttp));
    assert_eq!(source.tcp_connections()[0].server_to_client.1, not_http);
    assert_eq!(source.stats().unusable, 1);
}

/// Replay speed against reading the container alone, on a generated capture of 200 000
/// depth-update-sized messages. A measurement, not a check: run it on a quiet machine with
/// `cargo test --release -p pinion-feed --test pcap replay_throughput -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; run explicitly"]
fn replay_throughput() {
    use pinion_feed::source::pcap::file::CaptureReader;
    use std::time::Instant;

    const MESSAGES: usize = 200_000;
    let mut flow = default_flow();
    let mut p = Packets::new();
    upgrade(&mut flow, &mut p, T0, "h", "/", None);
    let body = br#"{"e":"depthUpdate","E":1723161600123,"s":"BTCUSDT","U":50093239219,"u":50093239230,"b":[["61000.10","0.512"],["60999.90","1.000"]],"a":[["61000.20","1.250"],["61000.30","0.004"]]}"#;
    for i in 0..MESSAGES {
        p.push((
            T0 + 10_000 + i as u64,
            flow.server(&ws_frame(true, false, 1, body, SERVER_KEY)),
        ));
    }
    let file = pcap_file(false, true, Link::Ethernet(&[]), &p);
    let rounds = 5;
    let (mut container, mut full) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let start = Instant::now();
        let mut reader = CaptureReader::new(Cursor::new(&file[..])).expect("header");
        let mut bytes = 0usize;
        while let Some(packet) = reader.next_packet().expect("packet") {
            bytes += packet.data.len();
        }
        std::hint::black_box(bytes);
        container.push(start.elapsed().as_nanos() as f64 / MESSAGES as f64);

        let start = Instant::now();
        let mut source =
            PcapSource::new(Cursor::new(&file[..]), PcapConfig::default()).expect("header");
        let mut n = 0usize;
        while let Some(r) = source.next_record().expect("record") {
            n += r.payload.len();
        }
        std::hint::black_box(n);
        full.push(start.elapsed().as_nanos() as f64 / MESSAGES as f64);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "per message ({} bytes, {} rounds, medians): container only {:.1} ns, full replay {:.1} ns",
        body.len(),
        rounds,
        median(&mut container),
        median(&mut full)
    );
}

/// A real capture of a feed handler's session: the REST snapshot it synced from, on its own
/// connection, is a `RestSnapshot` record with its request's URL, between the stream's frames.
#[test]
fn real_rest_snapshot_beside_the_stream_is_a_record() {
    let Some(path) = pinion_testkit::data::require("binance/sbe/spot-btcusdt-20240808.sbe.pcap")
    else {
        return;
    };
    let mut source = PcapSource::open(&path, PcapConfig::default()).expect("opens");
    let mut snapshots = Vec::new();
    let mut frames = 0u64;
    let mut frames_before_snapshot = 0u64;
    while let Some(rec) = source.next_record().expect("reads") {
        match rec.kind {
            RecordKind::RestSnapshot => {
                frames_before_snapshot = frames;
                snapshots.push((
                    rec.conn,
                    String::from_utf8_lossy(rec.meta).into_owned(),
                    rec.payload.to_vec(),
                ));
            }
            RecordKind::Frame => frames += 1,
            _ => {}
        }
    }
    let stats = *source.stats();
    assert_eq!(
        (stats.http_connections, stats.http_responses, stats.unusable),
        (1, 1, 0)
    );
    assert_eq!(snapshots.len(), 1);
    let (conn, url, body) = &snapshots[0];
    assert!(
        url.starts_with("http://") && url.ends_with("/api/v3/depth?symbol=BTCUSDT&limit=1000"),
        "{url}"
    );
    assert!(
        body.starts_with(b"{\"lastUpdateId\":50093239218,"),
        "{}",
        String::from_utf8_lossy(&body[..body.len().min(60)])
    );
    // The stream's connection and the REST one are told apart.
    let stream_conns: Vec<ConnId> = source
        .connections()
        .iter()
        .map(|c| c.id)
        .filter(|id| id != conn)
        .collect();
    assert_eq!(stream_conns.len(), 1);
    assert_eq!(
        frames,
        41_248 + 1,
        "the binary frames and the subscribe reply"
    );
    assert!(frames_before_snapshot < frames);
}

/// Every binary frame of the SBE capture, made by an encoder written apart from pinion's, reads
/// as a well-formed stream message of the schema, in the counts the capture's notes give, with
/// prices exact at the tick (0.01) and quantities at most 8 decimals (a level's quantity sums
/// orders of older, finer lot sizes: 25.426189 is one).
#[test]
fn real_sbe_frames_read_as_stream_messages() {
    use pinion_feed::sbe::{self, StreamMessage};
    let Some(path) = pinion_testkit::data::require("binance/sbe/spot-btcusdt-20240808.sbe.pcap")
    else {
        return;
    };
    let mut source = PcapSource::open(&path, PcapConfig::default()).expect("opens");
    let mut counts = [0u64; 4];
    let mut levels = 0u64;
    let mut last_diff = 0i64;
    while let Some(rec) = source.next_record().expect("reads") {
        if rec.kind != RecordKind::Frame || !sbe::is_stream_message(rec.payload) {
            continue;
        }
        let msg = sbe::read(rec.payload).expect("a well-formed message");
        assert_eq!(msg.symbol(), b"BTCUSDT");
        assert_eq!(msg.exponents(), (-8, -8));
        let exact = |px: i64, qty: i64| {
            assert!(sbe::scaled(px, -8, 2).is_some(), "price {px}e-8");
            assert!(
                sbe::scaled(qty, -8, 8).is_some_and(|q| q >= 0),
                "qty {qty}e-8"
            );
        };
        match msg {
            StreamMessage::Trades(t) => {
                counts[0] += 1;
                assert!(!t.trades.is_empty());
                t.trades.trades().for_each(|e| exact(e.price, e.qty));
            }
            StreamMessage::BestBidAsk(b) => {
                counts[1] += 1;
                exact(b.bid_price, b.bid_qty);
                exact(b.ask_price, b.ask_qty);
                assert!(b.bid_price < b.ask_price);
            }
            StreamMessage::DepthSnapshot(_) => counts[2] += 1,
            StreamMessage::DepthDiff(d) => {
                counts[3] += 1;
                assert!(d.first_update_id <= d.last_update_id);
                assert!(last_diff == 0 || d.first_update_id == last_diff + 1);
                last_diff = d.last_update_id;
                for (px, qty) in d.bids.levels().chain(d.asks.levels()) {
                    exact(px, qty);
                    levels += 1;
                }
            }
        }
    }
    assert_eq!(counts, [9_757, 28_040, 0, 3_451]);
    assert_eq!(last_diff, 50_093_421_584);
    assert!(levels > 3_451);
}

/// With nothing configured, the survey of the SBE capture finds what the survey of the JSON
/// recording it was made from finds: a Binance Spot connection and BTCUSDT's number shapes
/// (decimals and price grid), learnt from mantissas and exponents instead of decimal strings.
#[test]
fn survey_of_the_sbe_capture_equals_its_json_recording() {
    use pinion_core::Symbol;
    use pinion_feed::survey::survey;
    let (Some(sbe), Some(json)) = (
        pinion_testkit::data::require("binance/sbe/spot-btcusdt-20240808.sbe.pcap"),
        pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz"),
    ) else {
        return;
    };
    let binary = survey(&mut PcapSource::open(&sbe, PcapConfig::default()).expect("opens"));
    let text = survey(&mut *pinion_feed::source::open(&json).expect("opens"));
    assert_eq!(
        binary.binary_frames, 0,
        "every binary frame is an SBE message"
    );
    let key = (Venue::BinanceSpot, Symbol::from("BTCUSDT").expect("symbol"));
    let (b, t) = (&binary.instruments[&key], &text.instruments[&key]);
    assert_eq!(b.numbers.price_decimals, t.numbers.price_decimals);
    assert_eq!(b.numbers.qty_decimals, t.numbers.qty_decimals);
    assert_eq!(b.numbers.price_grid, t.numbers.price_grid);
    assert_eq!(b.numbers.grid_in(2), Some(1), "a 0.01 tick");
    assert_eq!(
        (b.depth_messages, b.other_messages),
        (t.depth_messages, t.other_messages)
    );
    assert!(
        binary
            .conns
            .iter()
            .any(|c| c.venue == Some(Venue::BinanceSpot) && c.frames > 41_000),
        "{:?}",
        binary.conns
    );
}
