//! [`RecordQueue`]: records received in one service turn, kept until the pipeline takes them.
//!
//! A service turn may read many messages from several sockets; the [`FrameSource`] interface
//! hands out one record at a time, borrowed. The queue copies each record's bytes into one arena
//! and its place into a list; both are emptied when the last record has been taken, so after
//! warm-up (the arena has grown to the largest turn) queueing allocates nothing.
//!
//! [`FrameSource`]: crate::FrameSource

use std::collections::VecDeque;
use std::ops::Range;

use pinion_core::{ConnId, RawRecord, RecordKind};

/// Where one queued record's bytes are.
#[derive(Debug, Clone)]
struct Item {
    t_recv: u64,
    conn: ConnId,
    kind: RecordKind,
    meta: Range<usize>,
    payload: Range<usize>,
}

/// Records waiting for the pipeline, in arrival order.
#[derive(Debug)]
pub(crate) struct RecordQueue {
    bytes: Vec<u8>,
    items: VecDeque<Item>,
}

impl RecordQueue {
    /// A queue with room for `bytes` of records and `records` records before it grows.
    pub fn with_capacity(bytes: usize, records: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            items: VecDeque::with_capacity(records),
        }
    }

    /// Appends a record.
    pub fn push(
        &mut self,
        t_recv: u64,
        conn: ConnId,
        kind: RecordKind,
        meta: &[u8],
        payload: &[u8],
    ) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(meta);
        let mid = self.bytes.len();
        self.bytes.extend_from_slice(payload);
        self.items.push_back(Item {
            t_recv,
            conn,
            kind,
            meta: start..mid,
            payload: mid..self.bytes.len(),
        });
    }

    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Forgets the arena once every record has been taken (call before the next turn; the last
    /// record handed out is no longer borrowed then).
    pub fn recycle(&mut self) {
        if self.items.is_empty() {
            self.bytes.clear();
        }
    }

    /// Takes the oldest record; its bytes stay in the arena until [`RecordQueue::recycle`].
    pub fn pop(&mut self) -> Option<RawRecord<'_>> {
        let item = self.items.pop_front()?;
        Some(RawRecord::new(
            item.t_recv,
            item.conn,
            item.kind,
            &self.bytes[item.meta],
            &self.bytes[item.payload],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_out_in_order_and_the_arena_is_reused() {
        let mut q = RecordQueue::with_capacity(64, 4);
        q.push(1, ConnId(0), RecordKind::Connect, b"wss://x", b"");
        q.push(2, ConnId(0), RecordKind::Frame, b"", b"{\"a\":1}");
        let r = q.pop().unwrap();
        assert_eq!(
            (r.t_recv, r.kind, r.meta),
            (1, RecordKind::Connect, &b"wss://x"[..])
        );
        let r = q.pop().unwrap();
        assert_eq!((r.t_recv, r.payload), (2, &b"{\"a\":1}"[..]));
        assert!(q.pop().is_none());
        q.recycle();
        assert_eq!(q.bytes.len(), 0);
    }
}
