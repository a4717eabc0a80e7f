//! The entry point of the input fuzz target (`fuzz/fuzz_targets/input.rs`) and of its stable
//! smoke test (`feed/tests/parse_fuzz_smoke.rs`): arbitrary bytes handed to the reader picker
//! as a stream, and every record read, with the readers' promises checked. A broken promise
//! panics, which is what a fuzzer looks for; bad input itself must never panic.

use std::io::Cursor;

use super::{Decompress, open_reader};

/// At most this many records and errors are read from one input: far more than any input a
/// fuzzer makes holds, so reaching it means a reader that does not end.
const MAX_READS: usize = 1 << 20;

/// What one input gave.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InputOutcome {
    /// The picker chose a reader.
    pub opened: bool,
    /// Records read.
    pub records: u64,
    /// Errors met while reading (the readers may go on after a bad line).
    pub errors: u64,
}

/// Opens `data` as a stream and reads it to the end, checking that:
/// - reading ends (an error does not repeat forever);
/// - the end stays the end;
/// - every record's connection is one the source lists.
pub fn read_input(data: &[u8]) -> InputOutcome {
    let mut outcome = InputOutcome::default();
    let Ok(mut src) = open_reader(Cursor::new(data.to_vec()), "fuzz", Decompress::Inline) else {
        return outcome;
    };
    outcome.opened = true;
    for _ in 0..MAX_READS {
        match src.next_record() {
            Ok(Some(rec)) => {
                let conn = rec.conn;
                outcome.records += 1;
                assert!(
                    src.connections().iter().any(|c| c.id == conn),
                    "record on unlisted connection {conn:?}"
                );
            }
            Ok(None) => {
                assert!(
                    matches!(src.next_record(), Ok(None)),
                    "the end did not stay the end"
                );
                return outcome;
            }
            Err(_) => outcome.errors += 1,
        }
    }
    panic!("reading did not end after {MAX_READS} reads: {outcome:?}");
}

/// Opens `data` as a stream and runs the start-up survey over it (see [`crate::survey`]),
/// checking that it counts every record the reader gives and names only listed connections.
pub fn survey_input(data: &[u8]) -> Option<crate::survey::Survey> {
    let mut src = open_reader(Cursor::new(data.to_vec()), "fuzz", Decompress::Inline).ok()?;
    let s = crate::survey::survey(&mut src);
    assert!(s.bad_records <= s.records, "more bad records than records");
    assert!(
        s.binary_frames + s.other_frames <= s.frames,
        "more unread frames than frames"
    );
    for ((_, sym), i) in &s.instruments {
        assert!(!sym.is_empty(), "an instrument with no symbol");
        assert!(
            i.numbers.price_decimals <= crate::survey::SURVEY_DECIMALS
                && i.numbers.qty_decimals <= crate::survey::SURVEY_DECIMALS,
            "decimals beyond the survey's scale"
        );
    }
    Some(s)
}

/// Arbitrary bytes as one direction of a REST exchange in a capture: read as a request and as
/// a response, ended or not, checking that what is read is never longer than what was given
/// and that a body respects the limit.
pub fn http_exchange(data: &[u8]) {
    use super::pcap::http_exchange::{request, response};
    const LIMIT: usize = 4096;
    const MAX_BODY: usize = 1 << 16;
    if let Ok(Some((url, len))) = request(data, LIMIT) {
        assert!(len <= data.len(), "a request longer than its bytes");
        assert!(url.starts_with("http://"), "a URL that is not http: {url}");
    }
    for ended in [false, true] {
        if let Ok(Some(r)) = response(data, ended, LIMIT, MAX_BODY) {
            assert!(r.len <= data.len(), "a response longer than its bytes");
            assert!(r.body.len() <= MAX_BODY, "a body over the limit");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_of_every_kind_end() {
        let o = read_input(b"1 {}\n2 {}\n");
        assert_eq!((o.opened, o.records, o.errors), (true, 2, 0));
        let o = read_input(b"{\"topic\":\"a\",\"ts\":1}\nbad\n{\"ts\":2}\n");
        assert_eq!((o.opened, o.records, o.errors), (true, 2, 1));
        assert!(!read_input(b"").opened);
        assert!(!read_input(b"PK\x03\x04").opened);
    }
}
