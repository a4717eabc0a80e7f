use super::*;
use proptest::prelude::*;

const LIMITS: ReadLimits = ReadLimits {
    max_head: 4096,
    max_body: 1 << 20,
};

/// Feeds `bytes` cut at `cuts` (sorted offsets); the first response or error, and what the
/// reader holds after it.
fn read_in_pieces(bytes: &[u8], cuts: &[usize]) -> Result<Option<Response>, ReadError> {
    let mut reader = ResponseReader::new(LIMITS);
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let cut = cut.clamp(from, bytes.len());
        if let Some(done) = reader.feed(&bytes[from..cut]).transpose() {
            return done.map(Some);
        }
        from = cut;
    }
    Ok(None)
}

fn read_whole(bytes: &[u8]) -> Result<Option<Response>, ReadError> {
    read_in_pieces(bytes, &[])
}

fn chunked(body: &[u8], sizes: &[usize], trailers: &str) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i)
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        out.extend_from_slice(format!("{n:x}").as_bytes());
        if i % 3 == 1 {
            out.extend_from_slice(b" ;ext=\"x\"");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
        i += 1;
    }
    out.extend_from_slice(b"0\r\n");
    out.extend_from_slice(trailers.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

const SNAPSHOT: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\n\
Content-Length: 28\r\nx-mbx-used-weight-1m: 25\r\n\r\n{\"lastUpdateId\":1,\"bids\":[]}";

#[test]
fn a_length_delimited_response_completes_at_its_last_byte_from_any_cut() {
    let full = read_whole(SNAPSHOT).expect("valid").expect("complete");
    assert_eq!(full.status, 200);
    assert_eq!(full.body, b"{\"lastUpdateId\":1,\"bids\":[]}");
    assert_eq!(full.headers.get_str("X-MBX-USED-WEIGHT-1M"), Some("25"));
    assert!(full.keep_alive);
    for cut in 0..SNAPSHOT.len() {
        for second in cut..SNAPSHOT.len() {
            let got = read_in_pieces(SNAPSHOT, &[cut, second]).expect("valid");
            assert_eq!(got.as_ref(), Some(&full), "cuts {cut} {second}");
        }
        let mut reader = ResponseReader::new(LIMITS);
        assert_eq!(
            reader.feed(&SNAPSHOT[..cut]),
            Ok(None),
            "incomplete at {cut}"
        );
    }
}

#[test]
fn chunked_bodies_lose_their_framing_and_trailers() {
    let bytes = chunked(
        b"hello, chunked world",
        &[5, 2, 13],
        "Trailer-A: 1\r\nB: 2\r\n",
    );
    for cut in 0..bytes.len() {
        let r = read_in_pieces(&bytes, &[cut])
            .expect("valid")
            .expect("complete");
        assert_eq!(r.body, b"hello, chunked world");
        assert!(r.keep_alive);
    }
    // The last byte is the trailers' blank line: one short is incomplete.
    let mut reader = ResponseReader::new(LIMITS);
    assert_eq!(reader.feed(&bytes[..bytes.len() - 1]), Ok(None));
    // Upper-case hex and an empty body.
    let r = read_whole(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
    )
    .expect("valid")
    .expect("complete");
    assert_eq!(r.body, b"0123456789");
    let r = read_whole(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n")
        .expect("valid")
        .expect("complete");
    assert!(r.body.is_empty());
}

#[test]
fn interim_answers_are_skipped_and_bodiless_statuses_have_no_body() {
    let r = read_whole(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX: y\r\n\r\n")
        .expect("valid")
        .expect("complete");
    assert_eq!((r.status, r.body.len()), (204, 0));
    assert_eq!(r.headers.get_str("x"), Some("y"));
    assert_eq!(r.headers.len(), 1, "the interim answer's headers are gone");
    let r = read_whole(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n")
        .expect("valid")
        .expect("complete");
    assert_eq!((r.status, r.body.len()), (304, 0));
}

#[test]
fn a_body_without_length_ends_with_the_connection() {
    let mut reader = ResponseReader::new(LIMITS);
    assert_eq!(
        reader.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one,"),
        Ok(None)
    );
    assert_eq!(reader.feed(b" part two"), Ok(None));
    let r = reader.finish().expect("complete at close");
    assert_eq!(r.body, b"part one, part two");
    assert!(!r.keep_alive);
}

#[test]
fn keep_alive_follows_the_version_and_connection_header() {
    let cases: [(&[u8], bool); 5] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n", false),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true),
        // Both framings: chunked wins, and the connection is not trusted further.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
            false,
        ),
    ];
    for (bytes, keep) in cases {
        let r = read_whole(bytes).expect("valid").expect("complete");
        assert_eq!(r.keep_alive, keep, "{}", bytes.escape_ascii());
    }
}

#[test]
fn the_end_of_the_connection_says_where_the_response_was_cut() {
    let mut reader = ResponseReader::new(LIMITS);
    assert_eq!(reader.finish(), Err(ReadError::ClosedBeforeResponse));
    reader.reset();
    let _ = reader.feed(b"HTTP/1.1 200 OK\r\nContent-Le");
    assert_eq!(
        reader.finish(),
        Err(ReadError::ClosedMidHead { received: 27 })
    );
    reader.reset();
    let _ = reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(
        reader.finish(),
        Err(ReadError::ClosedMidBody {
            received: 3,
            expected: Some(10)
        })
    );
    reader.reset();
    let _ = reader.feed(&chunked(b"abcdef", &[4], "")[..60]);
    let err = reader.finish().expect_err("cut");
    assert!(
        matches!(err, ReadError::ClosedMidBody { expected: None, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("a chunked"), "{err}");
}

#[test]
fn bodies_over_the_limit_are_refused_before_they_are_read() {
    let small = ReadLimits {
        max_head: 4096,
        max_body: 10,
    };
    let mut reader = ResponseReader::new(small);
    let err = reader
        .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
        .expect_err("declared too large");
    assert_eq!(
        err,
        ReadError::BodyTooLarge {
            max: 10,
            declared: Some(11)
        }
    );
    assert_eq!(err.to_string(), "response body over 10 bytes (declared 11)");
    let mut reader = ResponseReader::new(small);
    let bytes = chunked(b"0123456789A", &[6, 5], "");
    assert!(matches!(
        reader.feed(&bytes),
        Err(ReadError::BodyTooLarge { declared: None, .. })
    ));
    let mut reader = ResponseReader::new(small);
    let _ = reader.feed(b"HTTP/1.1 200 OK\r\n\r\n0123456789");
    assert!(matches!(
        reader.feed(b"A"),
        Err(ReadError::BodyTooLarge { .. })
    ));
    // Exactly at the limit is fine.
    let mut reader = ResponseReader::new(small);
    let r = reader
        .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
        .expect("valid")
        .expect("complete");
    assert_eq!(r.body.len(), 10);
}

#[test]
fn broken_framing_and_codings_are_errors_that_quote_what_was_seen() {
    let bad_head = read_whole(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").expect_err("not HTTP");
    assert!(matches!(bad_head, ReadError::BadHead { .. }));
    assert!(
        bad_head.to_string().contains("SSH-2.0-OpenSSH_9.6"),
        "{bad_head}"
    );
    // The quote is bounded.
    let long = [
        b"HTTP/1.1 200 OK\r\nX\x01: ".as_slice(),
        &[b'z'; 1000],
        b"\r\n\r\n",
    ]
    .concat();
    let err = read_whole(&long).expect_err("bad header");
    assert!(err.to_string().len() < 160, "{err}");
    // Three digits, but no status code (found by the fuzz target).
    for line in [
        &b"HTTP/1.0 043 x\r\n\r\n"[..],
        b"HTTP/1.1 600 x\r\nContent-Length: 0\r\n\r\n",
    ] {
        assert!(
            matches!(
                read_whole(line),
                Err(ReadError::BadHead {
                    what: "status code outside 100-599",
                    ..
                })
            ),
            "{}",
            line.escape_ascii()
        );
    }
    let too_long = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &[b'a'; 5000]].concat();
    assert!(matches!(
        read_whole(&too_long),
        Err(ReadError::HeadTooLong { max: 4096, .. })
    ));
    for (bytes, what) in [
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"[..],
            "two lengths",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "negative"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\na", "signed"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "overflow",
        ),
    ] {
        assert!(
            matches!(read_whole(bytes), Err(ReadError::BadContentLength { .. })),
            "{what}"
        );
    }
    let same_twice = read_whole(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nab")
        .expect("equal lengths are one")
        .expect("complete");
    assert_eq!(same_twice.body, b"ab");
    for bytes in [
        &b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert!(
            matches!(read_whole(bytes), Err(ReadError::UnsupportedCoding { .. })),
            "{}",
            bytes.escape_ascii()
        );
    }
    let chunk_head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (tail, what) in [
        (&b"zz\r\n"[..], "chunk size is not hexadecimal"),
        (b"5 x\r\nhello\r\n", "junk after the chunk size"),
        (b"fffffffffffffffffffffff\r\n", "chunk size overflows"),
        (b"5\r\nhelloXX", "chunk data not followed by CRLF"),
        (b"5\nhello\r\n", "line not ended by CRLF"),
    ] {
        let bytes = [&chunk_head[..], tail].concat();
        match read_whole(&bytes) {
            Err(ReadError::BadChunk { what: got, .. }) => assert_eq!(got, what),
            other => panic!("{what}: {other:?}"),
        }
    }
    let endless = [&chunk_head[..], &[b'1'; 2000]].concat();
    assert!(matches!(
        read_whole(&endless),
        Err(ReadError::BadChunk {
            what: "framing line too long",
            ..
        })
    ));
    let endless_trailers = [&chunk_head[..], b"0\r\n", &b"T: x\r\n".repeat(3000)].concat();
    assert!(matches!(
        read_whole(&endless_trailers),
        Err(ReadError::BadChunk { .. })
    ));
}

#[test]
fn bytes_after_the_response_are_leftovers_and_a_reset_starts_afresh() {
    let mut reader = ResponseReader::new(LIMITS);
    let two = [SNAPSHOT, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"].concat();
    let first = reader.feed(&two).expect("valid").expect("complete");
    assert_eq!(first.status, 200);
    assert_eq!(reader.leftover(), two.len() - SNAPSHOT.len());
    assert_eq!(reader.feed(b"more"), Ok(None));
    assert_eq!(reader.leftover(), two.len() - SNAPSHOT.len() + 4);
    reader.reset();
    assert_eq!((reader.leftover(), reader.received()), (0, 0));
    let again = reader.feed(SNAPSHOT).expect("valid").expect("complete");
    assert_eq!(again, first);
}

proptest! {
    /// A chunked body of any content, cut into chunks of any sizes and fed in any pieces,
    /// comes out whole.
    #[test]
    fn chunked_bodies_round_trip_through_any_pieces(
        body in proptest::collection::vec(any::<u8>(), 0..3000),
        sizes in proptest::collection::vec(1usize..700, 0..20),
        mut cuts in proptest::collection::vec(0usize..4000, 0..12),
        trailers in proptest::option::of("[A-Za-z]{1,8}: [ -~]{0,20}\r\n"),
    ) {
        let bytes = chunked(&body, &sizes, trailers.as_deref().unwrap_or(""));
        cuts.sort_unstable();
        let got = read_in_pieces(&bytes, &cuts).expect("valid").expect("complete");
        prop_assert_eq!(got.body, body);
    }

    /// Any bytes, fed whole or in any pieces, give the same response, or an error both ways;
    /// never a panic, never a body over the limit.
    #[test]
    fn any_bytes_read_the_same_in_any_pieces(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        prefix in proptest::sample::select(vec![
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n",
        ]),
        mut cuts in proptest::collection::vec(0usize..700, 0..8),
    ) {
        let input = [prefix, &bytes[..]].concat();
        cuts.sort_unstable();
        let whole = read_whole(&input);
        let pieces = read_in_pieces(&input, &cuts);
        match (&whole, &pieces) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "whole {:?} vs pieces {:?}", whole, pieces),
        }
        if let Ok(Some(r)) = whole {
            prop_assert!(r.body.len() <= LIMITS.max_body);
        }
    }
}
