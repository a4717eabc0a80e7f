//! Fuzz target: arbitrary bytes straight to the `.pnr` reader (no picker in front), read to the
//! end or the first error; never a panic, and a record never claims more bytes than the input
//! holds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pinion_feed::FrameSource;
use pinion_feed::recording::RecordingReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = RecordingReader::new(data) else {
        return;
    };
    let _ = reader.connections();
    let mut bytes = 0usize;
    while let Ok(Some(rec)) = reader.next_record() {
        bytes += 24 + rec.meta.len() + rec.payload.len();
        assert!(bytes <= data.len(), "records larger than the input");
    }
});
