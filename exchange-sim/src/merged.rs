//! [`MergedSource`]: several sources read as one, in receive-time order, for a live market of
//! several symbols built from single-symbol sources (the synthetic market is one symbol).

use pinion_core::{ConnId, ConnInfo, RawRecord, RecordKind};
use pinion_feed::{FrameSource, SourceError};

/// A record copied out of its source.
#[derive(Debug, Clone)]
struct Owned {
    t_recv: u64,
    kind: RecordKind,
    meta: Vec<u8>,
    payload: Vec<u8>,
}

/// Sources merged by receive time (ties: the earlier source first). Source `i`'s records carry
/// connection id `i`.
pub struct MergedSource {
    sources: Vec<Box<dyn FrameSource + Send>>,
    heads: Vec<Option<Owned>>,
    primed: bool,
    current: Option<(usize, Owned)>,
    conns: Vec<ConnInfo>,
}

impl std::fmt::Debug for MergedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergedSource")
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

impl MergedSource {
    /// Merges `sources` (at most 65,536).
    pub fn new(sources: Vec<Box<dyn FrameSource + Send>>) -> Self {
        let conns = sources
            .iter()
            .enumerate()
            .map(|(i, s)| ConnInfo {
                id: ConnId(u16::try_from(i).unwrap_or(u16::MAX)),
                venue: s.connections().first().and_then(|c| c.venue),
                url: s
                    .connections()
                    .first()
                    .map_or_else(String::new, |c| c.url.clone()),
            })
            .collect();
        let heads = sources.iter().map(|_| None).collect();
        MergedSource {
            sources,
            heads,
            primed: false,
            current: None,
            conns,
        }
    }

    fn pull(&mut self, i: usize) -> Result<(), SourceError> {
        self.heads[i] = self.sources[i].next_record()?.map(|r| Owned {
            t_recv: r.t_recv,
            kind: r.kind,
            meta: r.meta.to_vec(),
            payload: r.payload.to_vec(),
        });
        Ok(())
    }
}

impl FrameSource for MergedSource {
    fn connections(&self) -> &[ConnInfo] {
        &self.conns
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        if !self.primed {
            for i in 0..self.sources.len() {
                self.pull(i)?;
            }
            self.primed = true;
        }
        let next = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (h.t_recv, i)))
            .min();
        let Some((_, i)) = next else {
            self.current = None;
            return Ok(None);
        };
        let Some(record) = self.heads[i].take() else {
            return Ok(None);
        };
        self.pull(i)?;
        let (i, rec) = self.current.insert((i, record));
        Ok(Some(RawRecord {
            t_recv: rec.t_recv,
            conn: ConnId(u16::try_from(*i).unwrap_or(u16::MAX)),
            kind: rec.kind,
            meta: &rec.meta,
            payload: &rec.payload,
        }))
    }
}
