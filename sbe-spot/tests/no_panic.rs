//! Every generated view, given bytes it did not expect, answers with a value or an error and
//! never panics.

use pinion_sbe_spot::decode;
use pinion_sbe_spot::spot::exercise_every_view;
use proptest::prelude::*;

/// Every template id the schema defines, read from the pinned XML.
fn template_ids() -> Vec<u16> {
    let xml = include_str!("../schema/spot_3_5.xml");
    xml.split("<sbe:message name=\"")
        .skip(1)
        .map(|m| {
            let id = m
                .split("id=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("message has an id");
            id.parse().expect("id is a number")
        })
        .collect()
}

#[test]
fn the_schema_has_92_messages_and_decode_knows_each() {
    let ids = template_ids();
    // `grep -c "<sbe:message"` says 94, but two of those are the schema element and a comment.
    assert_eq!(ids.len(), 92);
    // A frame of zeros long enough for any block: every template is known to `decode`.
    for id in ids {
        let mut frame = vec![0u8; 4096];
        frame[2..4].copy_from_slice(&id.to_le_bytes());
        frame[4..6].copy_from_slice(&3u16.to_le_bytes());
        frame[6..8].copy_from_slice(&5u16.to_le_bytes());
        frame[0..2].copy_from_slice(&512u16.to_le_bytes());
        assert!(
            !matches!(
                decode(&frame),
                Err(pinion_sbe_spot::SbeError::UnknownTemplate { .. })
            ),
            "template {id}"
        );
    }
}

#[test]
fn zeros_build_every_view() {
    // Zero counts and zero lengths after a long enough block: every one of the 92 views builds
    // and reads at least one value, so the property tests below reach every accessor.
    let n = exercise_every_view(&[0; 4096], 512, 5);
    assert!(n >= 92 + 300, "only {n} values read");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600), block_length in 0u16..400, version in 0u16..8) {
        exercise_every_view(&body, block_length, version);
    }

    #[test]
    fn random_frames_with_a_real_header_never_panic(
        pick in any::<prop::sample::Index>(),
        block_length in 0u16..400,
        version in 0u16..8,
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let ids = template_ids();
        let id = ids[pick.index(ids.len())];
        let mut frame = Vec::with_capacity(8 + body.len());
        for v in [block_length, id, 3, version] {
            frame.extend_from_slice(&v.to_le_bytes());
        }
        frame.extend_from_slice(&body);
        if let Ok(m) = decode(&frame) {
            m.touch();
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(m) = decode(&bytes) {
            m.touch();
        }
    }
}
