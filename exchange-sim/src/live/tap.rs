//! The wire tap: when each market frame was written and when each `order.place` was read, on a
//! clock the caller gives, for measuring tick-to-trade from the exchange's side of the wire.
//!
//! Off unless [`LiveExchange::tap_wire`](super::LiveExchange::tap_wire) installed one. Both
//! logs are preallocated: a stamp is one clock read and one store (frames: an atomic slot, as
//! several market sessions may write; orders: a short lock on the WS API session's thread,
//! which is not the market's). A full log drops further stamps and counts them.
//!
//! The clock is a plain function so that the measuring side can hand in its own (pinion's
//! engine clock in the tick-to-trade bench): the simulator's stamps and the client's then need
//! no conversion.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Longest client order id kept (Binance allows 36 characters).
pub const MAX_CLIENT_ID: usize = 36;

/// One `order.place` as the WS API read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRead {
    /// When the request's frame had been read, on the tap's clock.
    pub at: u64,
    id: [u8; MAX_CLIENT_ID],
    len: u8,
}

impl OrderRead {
    /// The request's `newClientOrderId`.
    pub fn client_order_id(&self) -> &str {
        std::str::from_utf8(&self.id[..usize::from(self.len)]).unwrap_or("")
    }
}

/// The logs. See the module docs.
pub struct WireTap {
    clock: fn() -> u64,
    frames: Box<[AtomicU64]>,
    n_frames: AtomicUsize,
    orders: Mutex<Vec<OrderRead>>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for WireTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireTap")
            .field("frames", &self.n_frames.load(Ordering::Relaxed))
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl WireTap {
    /// Room for `frames` frame stamps and `orders` order reads, stamped with `clock`.
    pub fn new(clock: fn() -> u64, frames: usize, orders: usize) -> Self {
        WireTap {
            clock,
            frames: (0..frames).map(|_| AtomicU64::new(0)).collect(),
            n_frames: AtomicUsize::new(0),
            orders: Mutex::new(Vec::with_capacity(orders)),
            dropped: AtomicU64::new(0),
        }
    }

    /// Stamps a market frame handed to the socket now.
    #[inline]
    pub fn frame_written(&self) {
        let at = (self.clock)();
        let n = self.n_frames.fetch_add(1, Ordering::Relaxed);
        match self.frames.get(n) {
            Some(slot) => slot.store(at, Ordering::Relaxed),
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Stamps a WS API request just read, when it is an `order.place` with a
    /// `newClientOrderId` (found by its text; anything else is left alone).
    pub fn request_read(&self, text: &str) {
        let at = (self.clock)();
        if !text.contains("\"order.place\"") {
            return;
        }
        let Some(id) = client_order_id(text) else {
            return;
        };
        let mut read = OrderRead {
            at,
            id: [0; MAX_CLIENT_ID],
            len: 0,
        };
        let n = id.len().min(MAX_CLIENT_ID);
        read.id[..n].copy_from_slice(&id.as_bytes()[..n]);
        read.len = n as u8;
        let mut orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
        if orders.len() < orders.capacity() {
            orders.push(read);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The frame stamps so far, in the order they were taken (ascending when one session
    /// wrote them all).
    pub fn frames(&self) -> Vec<u64> {
        let n = self.n_frames.load(Ordering::Acquire).min(self.frames.len());
        self.frames[..n]
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect()
    }

    /// The order reads so far.
    pub fn orders(&self) -> Vec<OrderRead> {
        self.orders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stamps dropped because a log was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The value of `"newClientOrderId":"…"` in a request's text.
fn client_order_id(text: &str) -> Option<&str> {
    const KEY: &str = "\"newClientOrderId\"";
    let rest = &text[text.find(KEY)? + KEY.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks() -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    #[test]
    fn logs_frames_and_order_places_and_counts_what_does_not_fit() {
        let tap = WireTap::new(ticks, 2, 1);
        tap.frame_written();
        tap.frame_written();
        tap.frame_written();
        let frames = tap.frames();
        assert_eq!(frames.len(), 2);
        assert!(frames[0] < frames[1]);
        tap.request_read(r#"{"id":1,"method":"order.cancel","params":{"newClientOrderId":"x"}}"#);
        tap.request_read(
            r#"{"id":2,"method":"order.place","params":{"symbol":"BTCUSDT","newClientOrderId": "abc-1"}}"#,
        );
        tap.request_read(r#"{"id":3,"method":"order.place","params":{"newClientOrderId":"c"}}"#);
        let orders = tap.orders();
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0].client_order_id(), "abc-1");
        assert!(orders[0].at > frames[1]);
        assert_eq!(tap.dropped(), 2, "a third frame and a second order");
    }

    #[test]
    fn a_request_without_a_client_id_is_not_logged() {
        let tap = WireTap::new(ticks, 1, 4);
        tap.request_read(r#"{"id":1,"method":"order.place","params":{"symbol":"BTCUSDT"}}"#);
        tap.request_read(r#"{"method":"order.place","params":{"newClientOrderId":5}}"#);
        assert!(tap.orders().is_empty());
    }
}
