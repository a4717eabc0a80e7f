//! Bounded single-producer/single-consumer rings between stages, on top of `rtrb`.
//!
//! Values are held by value in slots allocated once, at construction; nothing on the push/pop path
//! allocates. A full ring never drops: [`RingTx::push`] waits with the calling thread's
//! [`WaitStrategy`](super::wait::WaitStrategy) until the consumer makes room, and counts each value
//! that had to wait as one back-pressure event. Stages that may share a thread with their consumer
//! (the fused placement) must use [`RingTx::try_push`] and hold the value back instead: waiting
//! for a consumer that runs on the same thread can never end, so `push` detects that case (once
//! the consumer has popped, or bound itself with [`RingRx::bind_to_current_thread`]) and panics
//! with a message rather than hanging (the runtime turns the panic into an error).
//!
//! A producer waiting on a full ring also gives up when the consumer end is dropped (its thread
//! died) or the run is aborting, so a failure elsewhere never leaves a thread spinning forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rtrb::{PushError, RingBuffer};

use super::context;
use super::wait::Waiter;

/// What both ends share besides the ring itself.
#[derive(Debug)]
struct RingShared {
    /// Token of the thread that pops (set on the first pop), 0 until then. Lets a producer tell a
    /// slow consumer from one that can never run because it is the producer's own thread.
    consumer_thread: AtomicU64,
}

/// The producing end of a ring.
#[derive(Debug)]
pub struct RingTx<T> {
    tx: rtrb::Producer<T>,
    shared: Arc<RingShared>,
    backpressure: u64,
    /// The last push attempt found the ring full and the value has not gone in yet: further
    /// attempts for the same value are not counted again.
    blocked: bool,
    undelivered: u64,
}

/// The consuming end of a ring.
#[derive(Debug)]
pub struct RingRx<T> {
    rx: rtrb::Consumer<T>,
    shared: Arc<RingShared>,
    registered: bool,
}

/// Creates a ring holding up to `capacity` values.
///
/// # Panics
/// If `capacity` is 0 (a ring that can never accept a value; config validation rejects it).
pub fn ring<T: Send>(capacity: usize) -> (RingTx<T>, RingRx<T>) {
    assert!(capacity > 0, "ring capacity must be at least 1");
    let (tx, rx) = RingBuffer::new(capacity);
    let shared = Arc::new(RingShared {
        consumer_thread: AtomicU64::new(0),
    });
    (
        RingTx {
            tx,
            shared: Arc::clone(&shared),
            backpressure: 0,
            blocked: false,
            undelivered: 0,
        },
        RingRx {
            rx,
            shared,
            registered: false,
        },
    )
}

/// Creates a ring like [`ring`] whose slot memory is already mapped: every slot is written once
/// with `fill` and read back before the ring is handed out. A ring slot array is a large
/// allocation (4096 slots of a 520-byte event are 2 MiB) that the kernel maps page by page on
/// first write, so without this the first pass of the producer through the ring takes hundreds
/// of page faults of several µs each, on the hot path. The ends are returned unbound (nothing
/// counts as a pop by this thread).
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
    /// Pushes `v`, waiting while the ring is full. Each value that found the ring full counts as
    /// one back-pressure event.
    ///
    /// Returns without delivering only if the value can never be delivered: the consumer end was
    /// dropped or the run is aborting (counted in [`RingTx::undelivered`]).
    ///
    /// # Panics
    /// If the ring is full and its consumer runs on the calling thread (a fused placement using
    /// the blocking push): that wait could never end.
    #[inline]
    pub fn push(&mut self, v: T) {
        match self.tx.push(v) {
            Ok(()) => self.blocked = false,
            Err(PushError::Full(v)) => self.push_waiting(v),
        }
    }

    #[cold]
    #[inline(never)]
    fn push_waiting(&mut self, mut v: T) {
        self.note_full();
        let consumer = self.shared.consumer_thread.load(Ordering::Relaxed);
        if consumer == context::thread_token() {
            panic!(
                "ring full and its consumer runs on this same thread: a stage that can share a \
                 thread with its consumer must use try_push"
            );
        }
        let mut waiter = Waiter::new(context::wait_strategy());
        loop {
            if self.tx.is_abandoned() || context::aborting() {
                self.undelivered += 1;
                self.blocked = false;
                return;
            }
            waiter.wait();
            match self.tx.push(v) {
                Ok(()) => {
                    self.blocked = false;
                    return;
                }
                Err(PushError::Full(back)) => v = back,
            }
        }
    }

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

    /// Values [`RingTx::push`] gave up on because the consumer is gone or the run is aborting.
    pub fn undelivered(&self) -> u64 {
        self.undelivered
    }

    /// Free slots right now.
    pub fn free(&self) -> usize {
        self.tx.slots()
    }

    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.tx.buffer().capacity()
    }

    /// True if the consumer end has been dropped.
    pub fn is_abandoned(&self) -> bool {
        self.tx.is_abandoned()
    }
}

impl<T> RingRx<T> {
    /// Hands the oldest value, in place, to `f`, then removes it; `None` if the ring is empty.
    /// For large values this saves the copy out of the slot that [`RingRx::pop`] makes (the
    /// stages' messages are hundreds of bytes, and those copies showed in profiles).
    #[inline]
    pub fn pop_ref<R>(&mut self, f: impl FnOnce(&T) -> R) -> Option<R> {
        if !self.registered {
            self.register();
        }
        let r = f(self.rx.peek().ok()?);
        // The value just peeked is there, so a chunk of one is available; committing it
        // drops the value in place (nothing for the stages' `Copy` messages).
        if let Ok(chunk) = self.rx.read_chunk(1) {
            chunk.commit_all();
        }
        Some(r)
    }

    /// Takes the oldest value, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if !self.registered {
            self.register();
        }
        // The only pop error is "empty".
        self.rx.pop().ok()
    }

    /// Records the calling thread as this ring's consumer now rather than at the first pop, so a
    /// producer on the same thread that finds the ring full before the consumer ever polled
    /// fails loudly instead of waiting forever. Call it from [`Stage::start`].
    ///
    /// [`Stage::start`]: super::stage::Stage::start
    pub fn bind_to_current_thread(&mut self) {
        self.register();
    }

    #[cold]
    fn register(&mut self) {
        self.registered = true;
        self.shared
            .consumer_thread
            .store(context::thread_token(), Ordering::Relaxed);
    }

    /// Values waiting in the ring.
    pub fn len(&self) -> usize {
        self.rx.slots()
    }

    /// True if no value is waiting.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// True if the producer end has been dropped (no more values will come).
    pub fn is_abandoned(&self) -> bool {
        self.rx.is_abandoned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop_ref_reads_in_place_and_removes() {
        let (mut tx, mut rx) = ring::<[u64; 4]>(2);
        assert_eq!(rx.pop_ref(|v| v[0]), None);
        tx.push([1, 2, 3, 4]);
        tx.push([5, 6, 7, 8]);
        assert_eq!(rx.pop_ref(|v| v.iter().sum::<u64>()), Some(10));
        assert_eq!(rx.len(), 1);
        tx.push([9; 4]);
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

    #[test]
    fn push_on_a_full_ring_consumed_by_this_thread_panics_instead_of_hanging() {
        let (mut tx, mut rx) = ring::<u32>(1);
        tx.push(1);
        assert_eq!(rx.pop(), Some(1)); // registers this thread as the consumer
        tx.push(2);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.push(3)));
        assert!(r.is_err());
        assert_eq!(rx.pop(), Some(2));
    }

    #[test]
    fn push_gives_up_when_the_consumer_is_gone() {
        let (mut tx, rx) = ring::<u32>(1);
        tx.push(1);
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(rx);
        });
        tx.push(2);
        t.join().unwrap();
        assert_eq!(tx.undelivered(), 1);
        assert_eq!(tx.backpressure(), 1);
        assert!(tx.is_abandoned());
    }
}
