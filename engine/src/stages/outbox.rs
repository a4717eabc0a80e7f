//! [`Outbox`]: a stage's output ring plus a small pre-allocated queue in front of it.
//!
//! A stage never blocks on a full ring: it may share its thread with the consumer (placements
//! `1` and `2`), and waiting for a consumer that only runs when the producer returns would never
//! end. So output goes into the queue, [`Outbox::flush`] moves as much as the ring takes, and a
//! stage takes new input only once its outbox is empty. A message that found the ring full is
//! counted once as back-pressure by the ring; nothing is dropped.
//!
//! Every message is stamped with the engine time it entered the ring (`t_exit`), so the consumer
//! can record the ring hop, and with its event time (`t_event`), the market data's receive time
//! it goes with, which the consumer's simulation and throttles run on. The queue is allocated at start-up with room for the largest burst a
//! stage produces from one input (a split 1000-level snapshot is about 72 events); a larger burst
//! grows it once and it stays grown.

use std::collections::VecDeque;

use pinion_core::InstrumentId;

use crate::runtime::RingTx;

/// A message with the time its producer handed it to the ring and its event time.
#[derive(Debug, Clone, Copy)]
pub struct Stamped<T> {
    /// Engine ns when the producer pushed it (its exit stamp): latency only.
    pub t_exit: u64,
    /// Event time of the message, ns since the Unix epoch: the receive time of the market data
    /// it is, or was decided on. An execution report from an event-time venue carries the event
    /// time it was released at (from a live venue, 0). 0 for the end-of-stream marker.
    pub t_event: u64,
    /// The message.
    pub msg: T,
}

impl<T> Stamped<T> {
    /// `msg` with both stamps 0 (for filling ring memory at start-up).
    pub const fn unstamped(msg: T) -> Self {
        Self {
            t_exit: 0,
            t_event: 0,
            msg,
        }
    }
}

/// An output ring with a queue in front. See the module docs.
#[derive(Debug)]
pub struct Outbox<T> {
    tx: RingTx<Stamped<T>>,
    /// Held already wrapped, so [`Outbox::flush`] only writes the stamp and copies each message
    /// once, into its ring slot: the messages are hundreds of bytes, and every extra move of
    /// one showed in profiles.
    queue: VecDeque<Stamped<T>>,
    sent: u64,
}

impl<T> Outbox<T> {
    /// An outbox on `tx` whose queue holds `burst` messages without growing.
    pub fn new(tx: RingTx<Stamped<T>>, burst: usize) -> Self {
        Self {
            tx,
            queue: VecDeque::with_capacity(burst),
            sent: 0,
        }
    }

    /// Writes `fill` into every slot of the queue's capacity and empties it again, so the
    /// queue's pages are mapped at start-up rather than faulted in on the hot path.
    pub fn prefaulted(mut self, fill: T) -> Self
    where
        T: Copy,
    {
        let room = self.queue.capacity();
        for _ in 0..room {
            self.queue
                .push_back(Stamped::unstamped(std::hint::black_box(fill)));
        }
        self.queue.clear();
        self
    }

    /// Sends a message of event time `t_event` now, stamped `now`, if nothing is queued ahead of
    /// it and the ring has room; otherwise queues it behind the others. Saves the queue's copy
    /// of the message on the common path.
    #[inline]
    pub fn send(&mut self, msg: T, t_event: u64, now: u64) {
        let stamped = Stamped {
            t_exit: now,
            t_event,
            msg,
        };
        if self.queue.is_empty() {
            match self.tx.try_push(stamped) {
                Ok(()) => self.sent += 1,
                Err(back) => self.queue.push_back(back),
            }
        } else {
            self.queue.push_back(stamped);
        }
    }

    /// Queues a message of event time `t_event`; it goes out on the next [`Outbox::flush`].
    #[inline]
    pub fn queue(&mut self, msg: T, t_event: u64) {
        self.queue.push_back(Stamped {
            t_exit: 0,
            t_event,
            msg,
        });
    }

    /// Moves queued messages into the ring, stamping them `now`, until the ring is full.
    /// Returns whether the queue is now empty.
    #[inline]
    pub fn flush(&mut self, now: u64) -> bool
    where
        T: Copy,
    {
        while let Some(front) = self.queue.front_mut() {
            front.t_exit = now;
            if self.tx.try_push(*front).is_err() {
                return false;
            }
            self.queue.pop_front();
            self.sent += 1;
        }
        true
    }

    /// Whether nothing is waiting in the queue.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Messages that went into the ring.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Messages that found the ring full (each counted once).
    pub fn backpressure(&self) -> u64 {
        self.tx.backpressure()
    }
}

/// A stage's outboxes to several consumers of one kind (the strategy stages), each
/// instrument's messages going to the one that owns it. With one consumer it is that consumer's
/// outbox and a bounds check.
#[derive(Debug)]
pub struct Fanout<T> {
    outs: Vec<Outbox<T>>,
    /// The outbox of each instrument id (absent ids: the first).
    route: Vec<u8>,
    /// The latest event time sent to any outbox.
    latest: u64,
}

impl<T: Copy> Fanout<T> {
    /// One consumer: every message goes to `out`.
    pub fn single(out: Outbox<T>) -> Self {
        Self {
            outs: vec![out],
            route: Vec::new(),
            latest: 0,
        }
    }

    /// Several consumers: instrument id `i`'s messages go to `outs[route[i]]` (ids past the
    /// table, and lanes past `outs`, to the first).
    pub fn new(outs: Vec<Outbox<T>>, route: Vec<u8>) -> Self {
        assert!(!outs.is_empty(), "a fanout needs an outbox");
        Self {
            outs,
            route,
            latest: 0,
        }
    }

    /// The outbox of instrument `id`'s messages.
    #[inline]
    pub fn lane_of(&self, id: InstrumentId) -> usize {
        let lane = self
            .route
            .get(usize::from(id.0))
            .map_or(0, |&l| usize::from(l));
        if lane < self.outs.len() { lane } else { 0 }
    }

    /// [`Outbox::send`] to the outbox of instrument `id`, stamped with the stream's event time:
    /// `t_event`, or the latest sent to any outbox if that is later. A stream merged from
    /// several connections is not quite in event-time order; a lone consumer's clock never
    /// goes back, and stamped so, each of several consumers sees the very times it would have
    /// seen alone, so how the instruments are spread over them changes nothing they decide.
    #[inline]
    pub fn send(&mut self, id: InstrumentId, msg: T, t_event: u64, now: u64) {
        let lane = self.lane_of(id);
        self.latest = self.latest.max(t_event);
        self.outs[lane].send(msg, self.latest, now);
    }

    /// [`Outbox::queue`] to every outbox (the end-of-stream marker), at the latest event time
    /// sent to any: each consumer's event clock ends where the stream's does, as a lone
    /// consumer's would.
    pub fn queue_all(&mut self, msg: T) {
        for out in &mut self.outs {
            out.queue(msg, self.latest);
        }
    }

    /// [`Outbox::flush`] of every outbox; whether all are empty now.
    #[inline]
    pub fn flush(&mut self, now: u64) -> bool {
        let mut empty = true;
        for out in &mut self.outs {
            empty &= out.flush(now);
        }
        empty
    }

    /// Messages that went into the rings.
    pub fn sent(&self) -> u64 {
        self.outs.iter().map(Outbox::sent).sum()
    }

    /// Messages that found a ring full.
    pub fn backpressure(&self) -> u64 {
        self.outs.iter().map(Outbox::backpressure).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ring;

    #[test]
    fn holds_back_what_the_ring_cannot_take_and_keeps_order() {
        let (tx, mut rx) = ring::<Stamped<u32>>(4);
        let mut out = Outbox::new(tx, 8);
        for i in 0..6 {
            out.queue(i, 100 + u64::from(i));
        }
        assert!(!out.flush(10));
        assert_eq!(out.sent(), 4);
        assert_eq!(out.backpressure(), 1);
        let got: Vec<u32> = std::iter::from_fn(|| rx.pop()).map(|s| s.msg).collect();
        assert_eq!(got, [0, 1, 2, 3]);
        assert!(out.flush(20));
        let rest: Vec<(u64, u64, u32)> = std::iter::from_fn(|| rx.pop())
            .map(|s| (s.t_exit, s.t_event, s.msg))
            .collect();
        assert_eq!(rest, [(20, 104, 4), (20, 105, 5)]);
        assert!(out.is_empty());
    }

    #[test]
    fn send_goes_straight_to_the_ring_unless_something_waits() {
        let (tx, mut rx) = ring::<Stamped<u32>>(2);
        let mut out = Outbox::new(tx, 8);
        out.send(1, 0, 5);
        out.send(2, 0, 6);
        out.send(3, 0, 7); // ring full: queued
        out.send(4, 0, 8); // behind it, in order
        assert_eq!((out.sent(), out.backpressure()), (2, 1));
        let got: Vec<(u64, u32)> = std::iter::from_fn(|| rx.pop())
            .map(|s| (s.t_exit, s.msg))
            .collect();
        assert_eq!(got, [(5, 1), (6, 2)]);
        assert!(out.flush(9));
        let got: Vec<(u64, u32)> = std::iter::from_fn(|| rx.pop())
            .map(|s| (s.t_exit, s.msg))
            .collect();
        assert_eq!(got, [(9, 3), (9, 4)]);
    }

    #[test]
    fn a_fanout_sends_each_instrument_to_its_lane_and_the_end_to_all() {
        let (tx0, mut rx0) = ring::<Stamped<u32>>(8);
        let (tx1, mut rx1) = ring::<Stamped<u32>>(8);
        let mut out = Fanout::new(
            vec![Outbox::new(tx0, 4), Outbox::new(tx1, 4)],
            vec![1, 0, 1],
        );
        out.send(InstrumentId(0), 10, 0, 1);
        out.send(InstrumentId(1), 11, 0, 1);
        out.send(InstrumentId(2), 12, 0, 1);
        // Past the table: the first lane.
        out.send(InstrumentId(9), 19, 0, 1);
        out.send(InstrumentId(1), 13, 7, 1);
        out.queue_all(99);
        assert!(out.flush(2));
        assert_eq!(out.sent(), 7);
        let lane = |rx: &mut crate::runtime::RingRx<Stamped<u32>>| {
            std::iter::from_fn(|| rx.pop())
                .map(|s| (s.msg, s.t_event))
                .collect::<Vec<_>>()
        };
        out.send(InstrumentId(0), 14, 5, 1);
        assert!(out.flush(3));
        assert_eq!(lane(&mut rx0), [(11, 0), (19, 0), (13, 7), (99, 7)]);
        // Sent at 5 after 7: stamped 7.
        assert_eq!(lane(&mut rx1), [(10, 0), (12, 0), (99, 7), (14, 7)]);
    }
}
