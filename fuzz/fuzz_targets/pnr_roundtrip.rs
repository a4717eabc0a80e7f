//! Fuzz target: arbitrary records (kind, connection, receive time, meta, payload) and header
//! (source, connections) written with the `.pnr` writer to a file, then read back with the
//! `.pnr` reader: the same header and the same records, in order, and then the end.

#![no_main]

use std::path::PathBuf;

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use pinion_core::{ConnId, ConnInfo, RecordKind, Venue};
use pinion_feed::FrameSource;
use pinion_feed::recording::{RecordingHeader, RecordingReader, RecordingWriter, Rotation};

/// One record, owned.
#[derive(Debug, PartialEq, Eq)]
struct Rec {
    t_recv: u64,
    conn: u16,
    kind: RecordKind,
    meta: Vec<u8>,
    payload: Vec<u8>,
}

fn record(u: &mut Unstructured<'_>) -> Result<Rec> {
    let kind = RecordKind::from_u8(u.int_in_range(0..=5)?).expect("kinds 0 to 5 exist");
    Ok(Rec {
        t_recv: u64::arbitrary(u)?,
        conn: u16::arbitrary(u)?,
        kind,
        meta: Vec::arbitrary(u)?,
        payload: Vec::arbitrary(u)?,
    })
}

fn header(u: &mut Unstructured<'_>) -> Result<RecordingHeader> {
    let mut h = RecordingHeader::new(String::arbitrary(u)?, u64::arbitrary(u)?);
    for _ in 0..u.int_in_range(0..=3)? {
        let venue = match u.int_in_range(0..=3)? {
            0 => None,
            1 => Some(Venue::BinanceSpot),
            2 => Some(Venue::BinanceUsdm),
            _ => Some(Venue::BybitSpot),
        };
        h.connections.push(ConnInfo {
            id: ConnId(u16::arbitrary(u)?),
            venue,
            url: String::arbitrary(u)?,
        });
    }
    Ok(h)
}

/// The scratch file: in memory where the system has a tmpfs at `/dev/shm`. The writer syncs its
/// file when it finishes, and on a disk that sync, not the code under test, takes most of each
/// input's time: a 10-minute campaign on disk spent about two thirds of it waiting, not fuzzing.
fn path() -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("pinion-fuzz-pnr-{}.pnr", std::process::id()))
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let header = header(u)?;
    let mut records = Vec::new();
    while !u.is_empty() && records.len() < 64 {
        records.push(record(u)?);
    }
    let path = path();
    let Ok(mut writer) = RecordingWriter::create(&path, header.clone(), Rotation::NONE) else {
        // A header the writer refuses (too long) is reported, not written.
        return Ok(());
    };
    for r in &records {
        writer
            .write_parts(r.t_recv, ConnId(r.conn), r.kind, &r.meta, &r.payload)
            .expect("records well under the size limits are written");
    }
    let files = writer.finish().expect("finish");
    assert_eq!(files.len(), 1, "no rotation asked for");

    let mut reader = RecordingReader::open(&files[0]).expect("the writer's file opens");
    assert_eq!(reader.header().source, header.source);
    assert_eq!(reader.header().connections, header.connections);
    assert_eq!(reader.connections(), header.connections.as_slice());
    for want in &records {
        let got = reader
            .next_record()
            .expect("the writer's records read back")
            .expect("no early end");
        let got = Rec {
            t_recv: got.t_recv,
            conn: got.conn.0,
            kind: got.kind,
            meta: got.meta.to_vec(),
            payload: got.payload.to_vec(),
        };
        assert_eq!(&got, want);
    }
    assert!(
        reader.next_record().expect("a clean end").is_none(),
        "nothing after the last record"
    );
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
