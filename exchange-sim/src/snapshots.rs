//! The REST depth snapshots a source holds, served at `GET /api/v3/depth?symbol=…`.
//!
//! A recording's snapshot was taken while its stream was buffering, so the stream that follows
//! bridges it: a client that opens the stream and then asks for the snapshot syncs exactly as the
//! recorder did. The table is read once, when the server starts, from a fresh copy of the source.
//!
//! Invariants: for each symbol the first snapshot of the recording is kept (a later one belongs
//! to a resync deep inside the stream, which a client connecting at the start cannot use). A
//! snapshot whose request URL is unknown (hbt files keep only the body) has no symbol and answers
//! for any symbol without a snapshot of its own. The body is served as recorded (`limit` is not
//! applied), so the client parses the exchange's own bytes.

use pinion_core::RecordKind;
use pinion_feed::{FrameSource, SourceError};

/// One recorded snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    /// Upper-case symbol from the request URL, when the source kept it.
    symbol: Option<String>,
    /// The response body as recorded.
    body: Vec<u8>,
}

/// The snapshots of a source, by symbol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotTable {
    snapshots: Vec<Snapshot>,
}

impl SnapshotTable {
    /// Reads `source` to its end and keeps the first snapshot of each symbol.
    ///
    /// A malformed record is skipped (the session will skip it too); a read error or a truncated
    /// input ends the scan with what was found so far and is returned alongside, so the caller
    /// can report it.
    pub fn scan(source: &mut dyn FrameSource) -> (Self, Option<SourceError>) {
        let mut table = SnapshotTable::default();
        loop {
            match source.next_record() {
                Ok(None) => return (table, None),
                Ok(Some(rec)) if rec.kind == RecordKind::RestSnapshot => {
                    let symbol = symbol_of_url(rec.meta);
                    if !table.snapshots.iter().any(|s| s.symbol == symbol) {
                        table.snapshots.push(Snapshot {
                            symbol,
                            body: rec.payload.to_vec(),
                        });
                    }
                }
                Ok(Some(_)) => {}
                Err(SourceError::Format { .. } | SourceError::Checksum { .. }) => {}
                Err(e) => return (table, Some(e)),
            }
        }
    }

    /// The snapshot body for `symbol` (case-insensitive), else the one with no known symbol.
    pub fn body_for(&self, symbol: &str) -> Option<&[u8]> {
        let exact = self.snapshots.iter().find(|s| {
            s.symbol
                .as_deref()
                .is_some_and(|own| own.eq_ignore_ascii_case(symbol))
        });
        exact
            .or_else(|| self.snapshots.iter().find(|s| s.symbol.is_none()))
            .map(|s| s.body.as_slice())
    }

    /// How many snapshots the table holds.
    pub fn len(&self) -> usize {
        self.snapshots.len()
    }

    /// Whether the source had no snapshot at all.
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
    }
}

/// The `symbol` query parameter of a recorded request URL, upper-cased.
pub(crate) fn symbol_of_url(url: &[u8]) -> Option<String> {
    let url = std::str::from_utf8(url).ok()?;
    let (_, query) = url.split_once('?')?;
    query.split('&').find_map(|pair| {
        let value = pair.strip_prefix("symbol=")?;
        (!value.is_empty()).then(|| value.to_ascii_uppercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_core::{ConnId, ConnInfo, RawRecord};

    /// A source over fixed `(kind, meta, payload)` records.
    struct Fixed {
        records: Vec<(RecordKind, &'static [u8], &'static [u8])>,
        next: usize,
        conns: Vec<ConnInfo>,
    }

    impl FrameSource for Fixed {
        fn connections(&self) -> &[ConnInfo] {
            &self.conns
        }
        fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
            let Some(&(kind, meta, payload)) = self.records.get(self.next) else {
                return Ok(None);
            };
            self.next += 1;
            Ok(Some(RawRecord {
                t_recv: self.next as u64,
                conn: ConnId(0),
                kind,
                meta,
                payload,
            }))
        }
    }

    #[test]
    fn first_snapshot_per_symbol_and_unnamed_fallback() {
        let mut src = Fixed {
            records: vec![
                (RecordKind::Frame, b"", b"{\"stream\":\"a\"}"),
                (
                    RecordKind::RestSnapshot,
                    b"https://api.binance.com/api/v3/depth?symbol=nknusdt&limit=1000",
                    b"{\"lastUpdateId\":1}",
                ),
                (
                    RecordKind::RestSnapshot,
                    b"https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000",
                    b"{\"lastUpdateId\":2}",
                ),
                (RecordKind::RestSnapshot, b"", b"{\"lastUpdateId\":3}"),
            ],
            next: 0,
            conns: Vec::new(),
        };
        let (table, err) = SnapshotTable::scan(&mut src);
        assert!(err.is_none());
        assert_eq!(table.len(), 2);
        assert_eq!(
            table.body_for("NKNUSDT"),
            Some(&b"{\"lastUpdateId\":1}"[..])
        );
        assert_eq!(
            table.body_for("btcusdt"),
            Some(&b"{\"lastUpdateId\":3}"[..])
        );
        assert_eq!(SnapshotTable::default().body_for("BTCUSDT"), None);
    }
}
