//! TCP reassembly of one direction of one connection.
//!
//! [`Reassembly`] turns segments, in whatever order the capture holds them, into the byte stream
//! the receiving application read. Segments are placed by sequence number (32-bit, wrapping):
//!
//! - data before the next expected byte is a retransmission (dropped) or an overlap (its old part
//!   is cut off; the bytes already delivered win);
//! - data beyond the next expected byte waits in a bounded out-of-order buffer, positioned
//!   relative to the next expected byte, until the hole before it is filled.
//!
//! A hole is declared lost — [`StreamLost`] — when the data waiting behind it exceeds the buffer,
//! when it has more separate pieces than [`MAX_PIECES`], or when it has been open longer than the
//! configured time (capture time). The caller then ends the direction with a gap: bytes after a
//! hole are never handed out as if they followed on.
//!
//! Invariants: `pieces` are sorted, disjoint, non-adjacent, and none starts at 0 (a piece at 0 is
//! delivered at once); `pending.len()` equals the end of the last piece.

use arrayvec::ArrayVec;

/// How many separate out-of-order pieces one direction may hold.
pub const MAX_PIECES: usize = 64;

/// What a segment turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// Exactly the next bytes (possibly releasing buffered ones behind them).
    InOrder,
    /// Entirely before the next expected byte: a retransmission, dropped.
    Retransmit,
    /// Partly before the next expected byte: the old part was cut off.
    Overlap,
    /// Beyond the next expected byte: buffered until the hole before it is filled.
    OutOfOrder,
    /// No payload and nothing to do.
    Empty,
}

/// A hole in the stream will not be filled: the direction must end with a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamLost {
    /// The data waiting behind the hole exceeds the out-of-order buffer.
    BufferFull,
    /// More separate out-of-order pieces than [`MAX_PIECES`].
    TooManyPieces,
    /// The hole has been open longer than the configured time.
    HoleTimeout,
}

/// A half-open range of offsets relative to the next expected byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    start: usize,
    end: usize,
}

/// Reassembly state of one direction.
#[derive(Debug)]
pub struct Reassembly {
    /// Sequence number of the next byte to deliver; `None` until the stream's start is known.
    next: Option<u32>,
    /// Out-of-order bytes at offsets relative to `next`.
    pending: Vec<u8>,
    pieces: ArrayVec<Piece, MAX_PIECES>,
    /// Capture time at which the current hole opened.
    hole_since: u64,
    /// Sequence number of the FIN, once seen.
    fin: Option<u32>,
    max_pending: usize,
    hole_timeout_ns: u64,
}

impl Reassembly {
    /// A direction whose start is not known yet, with the given out-of-order buffer and hole
    /// timeout.
    pub fn new(max_pending: usize, hole_timeout_ns: u64) -> Self {
        Reassembly {
            next: None,
            pending: Vec::new(),
            pieces: ArrayVec::new(),
            hole_since: 0,
            fin: None,
            max_pending,
            hole_timeout_ns,
        }
    }

    /// Whether the stream's start is known.
    pub fn started(&self) -> bool {
        self.next.is_some()
    }

    /// Starts the stream at `seq`: the next byte delivered is the one with that number.
    pub fn start_at(&mut self, seq: u32) {
        self.next = Some(seq);
        self.pending.clear();
        self.pieces.clear();
        self.fin = None;
    }

    /// Sequence number of the next byte to deliver.
    pub fn next_seq(&self) -> Option<u32> {
        self.next
    }

    /// Whether out-of-order data waits behind a hole.
    pub fn has_hole(&self) -> bool {
        !self.pieces.is_empty()
    }

    /// Records the FIN's sequence number (the byte after the segment's payload).
    pub fn set_fin(&mut self, seq: u32) {
        self.fin = Some(seq);
    }

    /// Whether every byte up to the FIN has been delivered.
    pub fn finished(&self) -> bool {
        matches!((self.next, self.fin), (Some(n), Some(f)) if n == f)
    }

    /// Whether the peer acknowledged data this direction never delivered (the capture missed it).
    /// `ack` is the highest acknowledgement seen from the peer.
    pub fn acked_beyond(&self, ack: u32) -> bool {
        let Some(next) = self.next else { return false };
        // The FIN takes one sequence number of its own.
        let slack = i32::from(self.finished());
        (ack.wrapping_sub(next) as i32) > slack
    }

    /// Frees the buffers of a direction that will receive nothing more.
    pub fn release(&mut self) {
        self.pending = Vec::new();
        self.pieces.clear();
    }

    /// Places a segment; new in-order bytes are appended to `out`.
    ///
    /// The stream must have been started ([`Reassembly::start_at`]); segments of a stream not
    /// started are reported as [`SegmentKind::Empty`] and ignored.
    pub fn push(
        &mut self,
        seq: u32,
        data: &[u8],
        now_ns: u64,
        out: &mut Vec<u8>,
    ) -> Result<SegmentKind, StreamLost> {
        let Some(next) = self.next else {
            return Ok(SegmentKind::Empty);
        };
        if !self.pieces.is_empty() && now_ns.saturating_sub(self.hole_since) > self.hole_timeout_ns
        {
            return Err(StreamLost::HoleTimeout);
        }
        if data.is_empty() {
            return Ok(SegmentKind::Empty);
        }
        let offset = seq.wrapping_sub(next) as i32;
        let (data, offset, mut kind) = if offset < 0 {
            let old = offset.unsigned_abs() as usize;
            if old >= data.len() {
                return Ok(SegmentKind::Retransmit);
            }
            (&data[old..], 0usize, SegmentKind::Overlap)
        } else {
            (data, offset as usize, SegmentKind::InOrder)
        };
        if offset == 0 && self.pieces.is_empty() {
            out.extend_from_slice(data);
            self.next = Some(next.wrapping_add(data.len() as u32));
            return Ok(kind);
        }
        let end = offset + data.len();
        if end > self.max_pending {
            return Err(StreamLost::BufferFull);
        }
        if offset > 0 {
            kind = SegmentKind::OutOfOrder;
            if self.pieces.is_empty() {
                self.hole_since = now_ns;
            }
        }
        if self.pending.len() < end {
            self.pending.resize(end, 0);
        }
        self.pending[offset..end].copy_from_slice(data);
        self.insert(Piece { start: offset, end })?;
        if self.pieces[0].start == 0 {
            let ready = self.pieces.remove(0).end;
            out.extend_from_slice(&self.pending[..ready]);
            self.pending.copy_within(ready.., 0);
            self.pending.truncate(self.pending.len() - ready);
            for piece in &mut self.pieces {
                piece.start -= ready;
                piece.end -= ready;
            }
            self.next = Some(next.wrapping_add(ready as u32));
        }
        Ok(kind)
    }

    /// Adds a piece, merging it with those it touches or overlaps.
    fn insert(&mut self, mut piece: Piece) -> Result<(), StreamLost> {
        let mut i = 0;
        while i < self.pieces.len() {
            let p = self.pieces[i];
            if p.end < piece.start {
                i += 1;
            } else if p.start > piece.end {
                break;
            } else {
                piece.start = piece.start.min(p.start);
                piece.end = piece.end.max(p.end);
                self.pieces.remove(i);
            }
        }
        self.pieces
            .try_insert(i, piece)
            .map_err(|_| StreamLost::TooManyPieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorders_drops_retransmits_and_trims_overlaps() {
        let mut r = Reassembly::new(1 << 16, u64::MAX);
        r.start_at(u32::MAX - 2); // wraps inside the stream
        let mut out = Vec::new();
        let base = u32::MAX - 2;
        assert_eq!(
            r.push(base.wrapping_add(6), b"ghij", 1, &mut out),
            Ok(SegmentKind::OutOfOrder)
        );
        assert_eq!(
            r.push(base.wrapping_add(3), b"def", 2, &mut out),
            Ok(SegmentKind::OutOfOrder)
        );
        assert!(out.is_empty() && r.has_hole());
        assert_eq!(r.push(base, b"abc", 3, &mut out), Ok(SegmentKind::InOrder));
        assert_eq!(out, b"abcdefghij");
        assert!(!r.has_hole());
        assert_eq!(
            r.push(base.wrapping_add(2), b"cde", 4, &mut out),
            Ok(SegmentKind::Retransmit)
        );
        assert_eq!(
            r.push(base.wrapping_add(8), b"ijKL", 5, &mut out),
            Ok(SegmentKind::Overlap)
        );
        assert_eq!(out, b"abcdefghijKL");
    }

    #[test]
    fn a_hole_beyond_the_buffer_or_too_old_is_lost() {
        let mut r = Reassembly::new(8, 100);
        r.start_at(0);
        let mut out = Vec::new();
        assert_eq!(r.push(10, b"x", 0, &mut out), Err(StreamLost::BufferFull));
        assert_eq!(r.push(2, b"x", 0, &mut out), Ok(SegmentKind::OutOfOrder));
        assert_eq!(r.push(4, b"y", 101, &mut out), Err(StreamLost::HoleTimeout));
        assert!(out.is_empty());
    }

    #[test]
    fn fin_and_acks_beyond_the_data() {
        let mut r = Reassembly::new(8, 100);
        r.start_at(100);
        let mut out = Vec::new();
        assert_eq!(r.push(100, b"abc", 0, &mut out), Ok(SegmentKind::InOrder));
        assert!(!r.acked_beyond(103));
        assert!(r.acked_beyond(110));
        r.set_fin(103);
        assert!(r.finished());
        assert!(!r.acked_beyond(104));
    }
}
