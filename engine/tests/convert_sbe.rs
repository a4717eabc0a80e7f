//! `pinion convert --encoding sbe` through the pipeline: a multi-symbol Binance Spot recording
//! becomes SBE frames for the streams SBE has, drops those it has not, and keeps every other
//! record; the instruments still go into the header.

mod common;

use pinion_core::RecordKind;
use pinion_engine::config::Overrides;
use pinion_engine::pipeline::{self, ConvertEncoding};
use pinion_feed::FrameSource;
use pinion_feed::recording::RecordingReader;
use pinion_feed::sbe::{MessageHeader, Template, is_stream_message};

#[test]
fn a_cryptofeed_spot_recording_converts_to_sbe() {
    let Some(path) = pinion_testkit::data::require("binance/spot-multi-20211012.cryptofeed.ws")
    else {
        return;
    };
    let dir = common::scratch_dir("convert-sbe");
    let pnr = dir.join("spot-multi.sbe.pnr");
    let settings = common::embedded_with(&Overrides::default());
    let plain = pipeline::convert_recording(&settings, &path, &dir.join("plain.pnr"))
        .expect("converts as recorded");
    let summary = pipeline::convert_recording_as(&settings, &path, &pnr, ConvertEncoding::Sbe)
        .expect("converts to SBE");
    let sbe = summary.sbe.as_ref().expect("SBE counts");
    assert_eq!(sbe.encoded(Template::BestBidAsk), 84);
    assert_eq!(sbe.encoded(Template::DepthDiff), 177);
    assert_eq!(sbe.encoded_total(), 261);
    // Two aggTrade and two kline messages: streams SBE does not have.
    assert_eq!((sbe.dropped, sbe.control, sbe.refused), (4, 0, 0));
    assert_eq!(summary.instruments, plain.instruments);
    assert_eq!(summary.stats.records + 4, plain.stats.records);
    for kind in [
        RecordKind::RestSnapshot,
        RecordKind::Http,
        RecordKind::Connect,
    ] {
        assert_eq!(
            summary.stats.count(kind),
            plain.stats.count(kind),
            "{kind:?}"
        );
    }

    let mut reader = RecordingReader::open(&pnr).expect("reopens");
    let mut templates = [0u64; 4];
    while let Some(rec) = reader.next_record().expect("record") {
        if rec.kind != RecordKind::Frame {
            continue;
        }
        assert!(is_stream_message(rec.payload), "a frame left as JSON");
        let header = MessageHeader::read(rec.payload).expect("header");
        let t = Template::from_id(header.template_id).expect("a known template");
        templates[t as usize - 10_000] += 1;
    }
    assert_eq!(templates, [0, 84, 0, 177]);
    let _ = std::fs::remove_dir_all(&dir);
}
