//! The SBE encoder on real data: the shipped BTCUSDT Spot recording converted to SBE gives,
//! frame for frame and byte for byte, the binary frames of `binance/sbe/…sbe.pcap`, which an
//! encoder written independently from the same schema made from the same recording.
//!
//! A counting global allocator checks that encoding allocates nothing once warm.

use std::path::PathBuf;

use pinion_core::RecordKind;
use pinion_feed::FrameSource;
use pinion_feed::recording::{
    RecordingHeader, RecordingReader, RecordingWriter, Rotation, convert_to_sbe,
};
use pinion_feed::sbe::{MessageHeader, Template, is_stream_message};
use pinion_feed::sbe_encode::{Encoded, Exponents, SbeEncoder};

#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

const JSON: &str = "binance/spot-btcusdt-20240808.hbt.gz";
const PCAP: &str = "binance/sbe/spot-btcusdt-20240808.sbe.pcap";

/// The payloads of a source's frames that are SBE stream messages, in order.
fn binary_frames(source: &mut dyn FrameSource) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(rec) = source.next_record().expect("record") {
        if rec.kind == RecordKind::Frame && is_stream_message(rec.payload) {
            out.push(rec.payload.to_vec());
        }
    }
    out
}

/// A path in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn converted_recording_equals_the_independent_capture_byte_for_byte() {
    let (Some(json), Some(pcap)) = (
        pinion_testkit::data::require(JSON),
        pinion_testkit::data::require(PCAP),
    ) else {
        return;
    };
    let out =
        TempFile(std::env::temp_dir().join(format!("pinion-sbe-real-{}.pnr", std::process::id())));
    let mut source = pinion_feed::source::open(&json).expect("open the JSON recording");
    let mut header = RecordingHeader::new("spot-btcusdt-20240808.hbt.gz", 0);
    header.connections = source.connections().to_vec();
    let mut writer = RecordingWriter::create(&out.0, header, Rotation::NONE).expect("create");
    let stats =
        convert_to_sbe(&mut *source, &mut writer, Exponents::BINANCE_SPOT).expect("convert");
    writer.finish().expect("finish");
    assert_eq!(stats.encoded(Template::Trades), 9_757);
    assert_eq!(stats.encoded(Template::BestBidAsk), 28_040);
    assert_eq!(stats.encoded(Template::DepthDiff), 3_451);
    assert_eq!(stats.encoded(Template::DepthSnapshot), 0);
    assert_eq!((stats.control, stats.dropped, stats.refused), (0, 0, 0));
    assert_eq!(stats.written.count(RecordKind::RestSnapshot), 1);

    let ours = binary_frames(&mut RecordingReader::open(&out.0).expect("reopen"));
    let theirs = binary_frames(&mut *pinion_feed::source::open(&pcap).expect("open the pcap"));
    assert_eq!(ours.len(), 41_248);
    assert_eq!(theirs.len(), ours.len(), "binary frames in the capture");
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if a != b {
            let at = a.iter().zip(b.iter()).position(|(x, y)| x != y);
            panic!(
                "frame {i} ({:?}) differs at byte {at:?} (lengths {} and {}):\n ours   {a:02x?}\n theirs {b:02x?}",
                MessageHeader::read(a).and_then(|h| Template::from_id(h.template_id)),
                a.len(),
                b.len()
            );
        }
    }
}

#[test]
fn encoding_allocates_nothing_once_warm() {
    let Some(json) = pinion_testkit::data::require(JSON) else {
        return;
    };
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut source = pinion_feed::source::open(&json).expect("open");
    while let Some(rec) = source.next_record().expect("record") {
        if rec.kind == RecordKind::Frame {
            frames.push((rec.t_recv, rec.payload.to_vec()));
        }
    }
    let mut encoder = SbeEncoder::new(Exponents::BINANCE_SPOT);
    let pass = |encoder: &mut SbeEncoder| {
        let mut bytes = 0usize;
        for (t, payload) in &frames {
            let out = encoder.encode(payload, *t, None).expect("encodes");
            assert!(matches!(out, Encoded::Frame(_)));
            bytes += encoder.frame().len();
        }
        bytes
    };
    let warm = pass(&mut encoder);
    let before = pinion_testkit::alloc::thread_allocations();
    let again = pass(&mut encoder);
    let allocations = pinion_testkit::alloc::thread_allocations() - before;
    assert_eq!(warm, again);
    assert_eq!(
        allocations,
        0,
        "allocations in a warm pass over {} frames",
        frames.len()
    );
}
