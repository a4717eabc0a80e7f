//! Bounded single-producer/single-consumer rings between stages, on top of `rtrb`.
//!
//! Values are held by value in slots allocated once, at construction; nothing on the push/pop path
//! allocates. A full ring never drops and never blocks: [`RingTx::try_push`] hands the value back
//! and counts it once as a back-pressure event, however many times it is retried. Stages send
//! through an [`Outbox`](crate::stages::outbox::Outbox), which holds such values back and
//! retries them on the next poll; a producer may share its thread with its consumer (placements
//! `1` and `2`), and waiting there for room could never end.

use rtrb::{PushError, RingBuffer};

/// The producing end of a ring.
#[derive(Debug)]
pub struct RingTx<T> {
    tx: rtrb::Producer<T>,
    backpressure: u64,
    /// The last push attempt found the ring full and the value has not gone in yet: further
    /// attempts for the same value are not counted again.
    blocked: bool,
}

/// The consuming end of a ring.
#[derive(Debug)]
pub struct RingRx<T> {
    rx: rtrb::Consumer<T>,
}

/// What one [`RingRx::pop_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Values taken from the ring.
    pub taken: usize,
    /// Whether it stopped because the ring was empty.
    pub emptied: bool,
}

/// Creates a ring holding up to `capacity` values.
///
/// # Panics
/// If `capacity` is 0 (a ring that can never accept a value; config validation rejects it).
pub fn ring<T: Send>(capacity: usize) -> (RingTx<T>, RingRx<T>) {
    assert!(capacity > 0, "ring capacity must be at least 1");
    let (tx, rx) = RingBuffer::new(capacity);
    (
        RingTx {
            tx,
            backpressure: 0,
            blocked: false,
        },
        RingRx { rx },
    )
}

/// Creates a ring like [`ring`] whose slot memory is already mapped: every slot is written once
/// with `fill` and read back before the ring is handed out. A ring slot array is a large
/// allocation (4096 slots of a 520-byte event are 2 MiB) that the kernel maps page by page on
/// first write, so without this the first pass of the producer through the ring takes hundreds
/// of page faults of several µs each, on the hot path.
pub fn ring_resident<T: Send + Copy>(capacity: usize, fill: T) -> (RingTx<T>, RingRx<T>) {
    let (mut tx, mut rx) = ring(capacity);
    for _ in 0..capacity {
        if tx.tx.push(std::hint::black_box(fill)).is_err() {
            break;
        }
    }
    while rx.rx.pop().is_ok() {}
    (tx, rx)
}

impl<T> RingTx<T> {
    /// Pushes `v` if there is room, or hands it back. A value handed back counts as one
    /// back-pressure event however many times it is retried.
    #[inline]
    pub fn try_push(&mut self, v: T) -> Result<(), T> {
        match self.tx.push(v) {
            Ok(()) => {
                self.blocked = false;
                Ok(())
            }
            Err(PushError::Full(v)) => {
                self.note_full();
                Err(v)
            }
        }
    }

    fn note_full(&mut self) {
        if !self.blocked {
            self.blocked = true;
            self.backpressure += 1;
        }
    }

    /// Values that found the ring full so far.
    pub fn backpressure(&self) -> u64 {
        self.backpressure
    }
}

impl<T> RingRx<T> {
    /// Hands the oldest value, in place, to `f`, then removes it; `None` if the ring is empty.
    /// For large values this saves the copy out of the slot that [`RingRx::pop`] makes (the
    /// stages' messages are hundreds of bytes, and those copies showed in profiles).
    #[inline]
    pub fn pop_ref<R>(&mut self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let r = f(self.rx.peek().ok()?);
        // The value just peeked is there, so a chunk of one is available; committing it
        // drops the value in place (nothing for the stages' `Copy` messages).
        if let Ok(chunk) = self.rx.read_chunk(1) {
            chunk.commit_all();
        }
        Some(r)
    }

    /// Handles up to `max` values where they lie, oldest first, with [`RingRx::pop_ref`]:
    /// stops early when the ring is empty or `f` returns false (after taking that value).
    #[inline]
    pub fn pop_batch(&mut self, max: usize, mut f: impl FnMut(&T) -> bool) -> Batch {
        let mut taken = 0;
        while taken < max {
            let Some(more) = self.pop_ref(&mut f) else {
                return Batch {
                    taken,
                    emptied: true,
                };
            };
            taken += 1;
            if !more {
                break;
            }
        }
        Batch {
            taken,
            emptied: false,
        }
    }

    /// Takes the oldest value, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        // The only pop error is "empty".
        self.rx.pop().ok()
    }

    /// Values waiting in the ring.
    pub fn len(&self) -> usize {
        self.rx.slots()
    }

    /// True if no value is waiting.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop_ref_reads_in_place_and_removes() {
        let (mut tx, mut rx) = ring::<[u64; 4]>(2);
        assert_eq!(rx.pop_ref(|v| v[0]), None);
        assert!(tx.try_push([1, 2, 3, 4]).is_ok());
        assert!(tx.try_push([5, 6, 7, 8]).is_ok());
        assert_eq!(rx.pop_ref(|v| v.iter().sum::<u64>()), Some(10));
        assert_eq!(rx.len(), 1);
        assert!(tx.try_push([9; 4]).is_ok());
        assert_eq!(rx.pop(), Some([5, 6, 7, 8]));
        assert_eq!(rx.pop_ref(|v| v[3]), Some(9));
        assert!(rx.is_empty());
    }

    #[test]
    fn try_push_counts_one_event_per_held_back_value() {
        let (mut tx, mut rx) = ring::<u32>(2);
        assert!(tx.try_push(1).is_ok());
        assert!(tx.try_push(2).is_ok());
        assert_eq!(tx.try_push(3), Err(3));
        assert_eq!(tx.try_push(3), Err(3));
        assert_eq!(tx.backpressure(), 1);
        assert_eq!(rx.pop(), Some(1));
        assert!(tx.try_push(3).is_ok());
        assert_eq!(tx.try_push(4), Err(4));
        assert_eq!(tx.backpressure(), 2);
        assert_eq!(rx.len(), 2);
        assert_eq!(rx.pop(), Some(2));
        assert_eq!(rx.pop(), Some(3));
        assert_eq!(rx.pop(), None);
    }
}
