//! Fuzz target: the trading journal's reader (`pinion_engine::ops::journal::frame::scan`), which
//! a restarted session runs over whatever a kill or a damaged disk left. Reading never panics;
//! what it accepts re-encodes to exactly the bytes it kept, the kept and the torn bytes make up
//! the whole input, and the state rebuilt from the records never panics either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pinion_engine::ops::journal::{Recovered, frame};

fuzz_target!(|data: &[u8]| {
    // Most inputs lack the magic; give them one so the frames behind it are read too.
    let mut with_magic = frame::MAGIC.to_vec();
    with_magic.extend_from_slice(data);
    for bytes in [data, &with_magic[..]] {
        let Ok(scan) = frame::scan(bytes) else {
            continue;
        };
        assert_eq!(scan.valid_len + scan.torn, bytes.len() as u64);
        if scan.valid_len > 0 {
            let mut again = frame::MAGIC.to_vec();
            for r in &scan.records {
                again.extend_from_slice(frame::encode(r).as_bytes());
            }
            assert_eq!(&again[..], &bytes[..scan.valid_len as usize]);
        } else {
            assert!(scan.records.is_empty());
        }
        let _ = Recovered::from_scan(&scan);
    }
});
