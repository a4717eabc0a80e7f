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
