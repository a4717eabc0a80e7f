//! Fuzz target: arbitrary bytes as a pcap or pcapng capture, straight to `PcapSource` (the
//! capture reader, link layers, TCP reassembly, the HTTP upgrade, WebSocket deframing and
//! permessage-deflate), read to the end or the first error. The first byte picks small or
//! default limits and whether control frames are given, so the limits' edges are reached too.
//! Checked: no panic, reading ends, every record's connection is listed, and the per-connection
//! report can always be made.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pinion_feed::FrameSource;
use pinion_feed::source::pcap::{PcapConfig, PcapSource};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, capture)) = data.split_first() else {
        return;
    };
    let mut config = PcapConfig {
        control_frames: mode & 1 != 0,
        ..PcapConfig::default()
    };
    if mode & 2 != 0 {
        config.max_message = 256;
        config.max_out_of_order = 512;
        config.max_handshake = 128;
        config.hole_timeout_ns = 1_000;
    }
    let Ok(mut src) = PcapSource::new(capture, config) else {
        return;
    };
    for _ in 0..1 << 20 {
        match src.next_record() {
            Ok(Some(rec)) => {
                let conn = rec.conn;
                assert!(
                    src.connections().iter().any(|c| c.id == conn),
                    "record on unlisted {conn:?}"
                );
            }
            Ok(None) => {
                assert!(
                    matches!(src.next_record(), Ok(None)),
                    "the end did not stay the end"
                );
                let _ = src.tcp_connections();
                let _ = src.stats();
                return;
            }
            // A capture reader error ends the file.
            Err(_) => return,
        }
    }
    panic!("reading did not end");
});
