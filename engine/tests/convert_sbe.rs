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

/// Every book state a replay passes through, once per change of update id: (instrument, last
/// update id, state, the top 20 levels a side). A JSON replay and its SBE conversion must
/// give the same sequence.
fn book_states(input: &std::path::Path) -> Vec<String> {
    let settings = common::fused_recording(input);
    let mut out = Vec::new();
    let mut last: Vec<(String, u64)> = Vec::new();
    pipeline::replay_books(&settings, pipeline::DumpPoints::Every(1), 20, |point| {
        for b in &point.books {
            let key = format!("{} {}", b.venue, b.symbol);
            let seen = last.iter_mut().find(|(k, _)| *k == key);
            let changed = match seen {
                Some((_, id)) if *id == b.last_update_id => false,
                Some((_, id)) => {
                    *id = b.last_update_id;
                    true
                }
                None => {
                    last.push((key.clone(), b.last_update_id));
                    true
                }
            };
            if changed {
                // Values as exact decimals without trailing zeros: the two replays may hold
                // an instrument at different scales (learnt from the text's digits, or from
                // mantissas), never at different values.
                let trim = |t: &String| {
                    if t.contains('.') {
                        t.trim_end_matches('0').trim_end_matches('.').to_owned()
                    } else {
                        t.clone()
                    }
                };
                let side = |levels: &[[String; 2]]| -> Vec<[String; 2]> {
                    levels.iter().map(|[p, q]| [trim(p), trim(q)]).collect()
                };
                out.push(format!(
                    "{key} {} {} {:?} {:?}",
                    b.last_update_id,
                    b.state,
                    side(&b.bids),
                    side(&b.asks)
                ));
            }
        }
        Ok(())
    })
    .expect("replays");
    out
}

/// Each shipped Binance Spot recording, converted to SBE, replays to the same books as the
/// JSON original at every update: the same ids in the same order, the same state and levels.
#[test]
fn converted_recordings_replay_to_the_books_of_their_json_originals() {
    for rel in [
        "binance/spot-btcusdt-20240808.hbt.gz",
        "binance/spot-multi-20211012.cryptofeed.ws",
    ] {
        let Some(path) = pinion_testkit::data::require(rel) else {
            continue;
        };
        let dir = common::scratch_dir("convert-sbe-books");
        let pnr = dir.join("converted.sbe.pnr");
        let settings = common::embedded_with(&Overrides::default());
        pipeline::convert_recording_as(&settings, &path, &pnr, ConvertEncoding::Sbe)
            .expect("converts to SBE");
        let json = book_states(&path);
        let sbe = book_states(&pnr);
        eprintln!("{rel}: {} book states", json.len());
        assert!(json.len() > 100, "{rel}: {} book states", json.len());
        assert_eq!(json.len(), sbe.len(), "{rel}: book states");
        for (i, (a, b)) in json.iter().zip(&sbe).enumerate() {
            assert!(a == b, "{rel}: state {i} differs:\n{a}\n{b}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
