//! Exact unescaping of a JSON string literal into a reused buffer.
//!
//! cryptofeed's JSONL captures keep each frame as a JSON string; the frame bytes the parser must
//! see are that string unescaped. serde_json would unescape into a fresh `String` per record;
//! this writes into the caller's buffer instead, so steady-state reading does not allocate.
//! The result equals serde_json's for every valid literal (`\uXXXX` surrogate pairs included);
//! a lone surrogate or a bad escape is an error rather than a replacement character.

/// Why a JSON string literal could not be unescaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnescapeError {
    /// Not enclosed in double quotes.
    NotAString,
    /// A backslash followed by something JSON does not allow.
    BadEscape,
    /// A `\u` escape without four hex digits, or a surrogate without its pair.
    BadUnicode,
}

impl UnescapeError {
    pub(crate) const fn what(self) -> &'static str {
        match self {
            UnescapeError::NotAString => "`data` is not a JSON string",
            UnescapeError::BadEscape => "`data` has an invalid escape",
            UnescapeError::BadUnicode => "`data` has an invalid \\u escape",
        }
    }
}

/// Unescapes the literal `raw` (quotes included) into `out`, replacing its contents.
pub(crate) fn unescape_into(raw: &[u8], out: &mut Vec<u8>) -> Result<(), UnescapeError> {
    let inner = raw
        .strip_prefix(b"\"")
        .and_then(|r| r.strip_suffix(b"\""))
        .ok_or(UnescapeError::NotAString)?;
    out.clear();
    let mut i = 0;
    while i < inner.len() {
        let run = inner[i..]
            .iter()
            .position(|&c| c == b'\\')
            .unwrap_or(inner.len() - i);
        out.extend_from_slice(&inner[i..i + run]);
        i += run;
        if i == inner.len() {
            break;
        }
        let esc = *inner.get(i + 1).ok_or(UnescapeError::BadEscape)?;
        i += 2;
        let byte = match esc {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let (ch, used) = unicode_escape(&inner[i..])?;
                i += used;
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
                continue;
            }
            _ => return Err(UnescapeError::BadEscape),
        };
        out.push(byte);
    }
    Ok(())
}

/// The character of a `\u` escape whose four hex digits start `s` (and of its low surrogate's
/// escape when it is a high surrogate), with the bytes consumed.
fn unicode_escape(s: &[u8]) -> Result<(char, usize), UnescapeError> {
    let hi = hex4(s)?;
    let (code, used) = match hi {
        0xD800..=0xDBFF => {
            if s.get(4..6) != Some(b"\\u") {
                return Err(UnescapeError::BadUnicode);
            }
            let lo = hex4(&s[6..])?;
            if !(0xDC00..=0xDFFF).contains(&lo) {
                return Err(UnescapeError::BadUnicode);
            }
            (0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), 10)
        }
        0xDC00..=0xDFFF => return Err(UnescapeError::BadUnicode),
        _ => (hi, 4),
    };
    let ch = char::from_u32(code).ok_or(UnescapeError::BadUnicode)?;
    Ok((ch, used))
}

fn hex4(s: &[u8]) -> Result<u32, UnescapeError> {
    let digits = s.get(..4).ok_or(UnescapeError::BadUnicode)?;
    digits.iter().try_fold(0u32, |acc, &c| {
        let d = char::from(c)
            .to_digit(16)
            .ok_or(UnescapeError::BadUnicode)?;
        Ok(acc * 16 + d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unescape(raw: &str) -> Result<String, UnescapeError> {
        let mut out = Vec::new();
        unescape_into(raw.as_bytes(), &mut out)?;
        Ok(String::from_utf8(out).expect("unescaped text is UTF-8"))
    }

    #[test]
    fn escapes_match_serde_json() {
        for raw in [
            r#""plain""#,
            r#""{\"topic\":\"orderbook.200.BTCUSDT\"}""#,
            r#""a\/b\\c\n\r\t\b\f""#,
            r#""\u00e9\u20AC\ud83d\ude00x""#,
            r#""""#,
        ] {
            let expected: String = serde_json::from_str(raw).unwrap();
            assert_eq!(unescape(raw), Ok(expected), "{raw}");
        }
    }

    #[test]
    fn malformed_literals_are_errors() {
        assert_eq!(unescape("abc"), Err(UnescapeError::NotAString));
        assert_eq!(unescape(r#""a\x""#), Err(UnescapeError::BadEscape));
        assert_eq!(unescape(r#""a\""#), Err(UnescapeError::BadEscape));
        assert_eq!(unescape(r#""\u12""#), Err(UnescapeError::BadUnicode));
        assert_eq!(unescape(r#""\ud83dx""#), Err(UnescapeError::BadUnicode));
        assert_eq!(unescape(r#""\ude00""#), Err(UnescapeError::BadUnicode));
    }

    proptest! {
        #[test]
        fn round_trips_any_string(s in any::<String>()) {
            let raw = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(unescape(&raw), Ok(s));
        }

        #[test]
        fn round_trips_ascii_escaped(s in any::<String>()) {
            // Every non-ASCII character as \u escapes, pairs for the astral planes.
            let mut raw = String::from("\"");
            for unit in s.encode_utf16() {
                raw.push_str(&format!("\\u{unit:04x}"));
            }
            raw.push('"');
            prop_assert_eq!(unescape(&raw), Ok(s));
        }
    }
}
