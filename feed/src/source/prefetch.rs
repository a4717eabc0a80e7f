//! [`Prefetched`]: a source whose first records are read ahead and kept, so they can be looked
//! at before the replay and then replayed all the same.
//!
//! Standard input can be read only once, so it cannot have the first pass a file gets (see
//! [`crate::survey`]). Reading its head into memory gives that pass something to look at — the
//! venue of each connection, the symbol a snapshot belongs to, the instruments and their numbers —
//! and the replay then yields the kept records first and the rest of the stream after them, the
//! same records in the same order as without the look.
//!
//! The head is copied once, at start-up; after it, records are lent from the inner source as
//! before, with no copy.

use crate::error::SourceError;
use crate::source::FrameSource;
use pinion_core::{ConnId, ConnInfo, RawRecord, RecordKind};

/// One record of the head, owned.
#[derive(Debug, Clone)]
struct Kept {
    t_recv: u64,
    conn: ConnId,
    kind: RecordKind,
    meta: Vec<u8>,
    payload: Vec<u8>,
}

/// A source whose first records were read ahead. See the module docs.
pub struct Prefetched<S> {
    inner: S,
    head: Vec<Kept>,
    /// The source's errors met while reading the head, at the records they stood in for.
    head_errors: Vec<(usize, SourceError)>,
    /// The next record of the head to yield (`head.len()` once it is all out).
    next: usize,
    /// The inner source ended while the head was read.
    inner_ended: bool,
}

impl<S> std::fmt::Debug for Prefetched<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetched")
            .field("head", &self.head.len())
            .field("next", &self.next)
            .field("inner_ended", &self.inner_ended)
            .finish_non_exhaustive()
    }
}

impl<S: FrameSource> Prefetched<S> {
    /// Reads up to `max_records` records, or until their bytes reach `max_bytes`, from `inner`
    /// and keeps them. A source error is kept in its place and yielded there again; an error of
    /// the stream itself (I/O, truncation) ends the head, as it ends the source.
    pub fn new(mut inner: S, max_records: usize, max_bytes: usize) -> Self {
        let mut head = Vec::new();
        let mut head_errors = Vec::new();
        let mut bytes = 0usize;
        let mut inner_ended = false;
        while head.len() + head_errors.len() < max_records && bytes < max_bytes {
            match inner.next_record() {
                Ok(Some(r)) => {
                    bytes += r.meta.len() + r.payload.len();
                    head.push(Kept {
                        t_recv: r.t_recv,
                        conn: r.conn,
                        kind: r.kind,
                        meta: r.meta.to_vec(),
                        payload: r.payload.to_vec(),
                    });
                }
                Ok(None) => {
                    inner_ended = true;
                    break;
                }
                Err(e) => {
                    let fatal = matches!(e, SourceError::Io(_) | SourceError::Truncated { .. });
                    head_errors.push((head.len(), e));
                    if fatal {
                        inner_ended = true;
                        break;
                    }
                }
            }
        }
        head_errors.reverse();
        Self {
            inner,
            head,
            head_errors,
            next: 0,
            inner_ended,
        }
    }

    /// Whether the whole input fitted in the head.
    pub fn is_whole(&self) -> bool {
        self.inner_ended
    }

    /// Records kept.
    pub fn head_len(&self) -> usize {
        self.head.len()
    }

    /// A source over the kept head alone (errors included), for a first look at it.
    pub fn head(&self) -> HeadSource<'_> {
        HeadSource {
            head: &self.head,
            errors: self
                .head_errors
                .iter()
                .rev()
                .map(|(i, e)| (*i, e))
                .collect(),
            connections: self.inner.connections(),
            next: 0,
        }
    }
}

impl<S: FrameSource> FrameSource for Prefetched<S> {
    fn connections(&self) -> &[ConnInfo] {
        self.inner.connections()
    }

    fn last_line(&mut self) -> Option<crate::source::SourceLine<'_>> {
        // Past the head, the inner source's line is the last record's; within it, the head
        // was read ahead and the inner source's line is a later one.
        if self.next == 0 && self.head.is_empty() {
            self.inner.last_line()
        } else {
            None
        }
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        if let Some((at, _)) = self.head_errors.last()
            && *at == self.next
            && let Some((_, e)) = self.head_errors.pop()
        {
            return Err(e);
        }
        if self.next < self.head.len() {
            let k = &self.head[self.next];
            self.next += 1;
            return Ok(Some(RawRecord::new(
                k.t_recv, k.conn, k.kind, &k.meta, &k.payload,
            )));
        }
        if !self.head.is_empty() {
            // The head is out: give its memory back before the rest streams.
            self.head = Vec::new();
            self.next = 0;
        }
        if self.inner_ended {
            return Ok(None);
        }
        self.inner.next_record()
    }
}

/// The kept head of a [`Prefetched`] source, as a source of its own.
pub struct HeadSource<'a> {
    head: &'a [Kept],
    /// Errors at their places, first last.
    errors: Vec<(usize, &'a SourceError)>,
    connections: &'a [ConnInfo],
    next: usize,
}

impl std::fmt::Debug for HeadSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadSource")
            .field("records", &self.head.len())
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl FrameSource for HeadSource<'_> {
    fn connections(&self) -> &[ConnInfo] {
        self.connections
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        if let Some(&(at, e)) = self.errors.last()
            && at == self.next
        {
            self.errors.pop();
            // A copy of the error in its place: what it said, at the position it gave.
            return Err(match e {
                SourceError::Format {
                    format,
                    position,
                    what,
                } => SourceError::Format {
                    format,
                    position: *position,
                    what: what.clone(),
                },
                other => SourceError::Format {
                    format: "input",
                    position: 0,
                    what: other.to_string(),
                },
            });
        }
        let Some(k) = self.head.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        Ok(Some(RawRecord::new(
            k.t_recv, k.conn, k.kind, &k.meta, &k.payload,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::hbt::HbtReader;

    fn reader(text: &str) -> HbtReader<std::io::Cursor<Vec<u8>>> {
        HbtReader::from_buf_read(
            std::io::Cursor::new(text.as_bytes().to_vec()),
            None,
            String::from("test"),
        )
    }

    fn drain(s: &mut dyn FrameSource) -> Vec<Result<(u64, Vec<u8>), String>> {
        let mut out = Vec::new();
        loop {
            match s.next_record() {
                Ok(Some(r)) => out.push(Ok((r.t_recv, r.payload.to_vec()))),
                Ok(None) => return out,
                Err(e) => out.push(Err(e.to_string())),
            }
        }
    }

    #[test]
    fn the_head_is_looked_at_then_replayed_with_the_rest() {
        let text = "1 {\"a\":1}\n2 {\"a\":2}\nbroken\n4 {\"a\":4}\n5 {\"a\":5}\n6 {\"a\":6}\n";
        let plain = drain(&mut reader(text));
        for max in [0, 1, 2, 3, 4, 10] {
            let mut p = Prefetched::new(reader(text), max, usize::MAX);
            let head = drain(&mut p.head());
            assert_eq!(head, plain[..max.min(plain.len())], "head of {max}");
            assert_eq!(p.is_whole(), max > plain.len());
            assert_eq!(drain(&mut p), plain, "replay after a head of {max}");
        }
        // A byte budget ends the head after the record that reaches it.
        let p = Prefetched::new(reader(text), 100, 8);
        assert_eq!(p.head_len(), 2);
    }
}
