//! Ring hop benchmark: the runtime's SPSC ring (`rtrb` underneath) against a
//! `crossbeam::queue::ArrayQueue` baseline, in the same run, carrying a `MarketEvent` (520 bytes)
//! by value.
//!
//! - `round_trip`: ping-pong between the bench thread and an echo thread; one iteration is one
//!   event there and back, so a hop is about half of it.
//! - `one_way`: the bench thread streams events to a consumer thread; one iteration is one event
//!   (criterion prints events/s), ending each batch with a marker the consumer acknowledges.
//!
//! Both sides busy-spin, so the numbers mean something only with the two threads on two
//! different, otherwise idle cores; the placement and the load average are printed first. On a
//! tuned host: performance governor, turbo off, the two cores isolated (`isolcpus`, `nohz_full`).

use std::hint::{black_box, spin_loop};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbeam::queue::ArrayQueue;
use pinion_core::MarketEvent;
use pinion_engine::host::{CpuList, HostIsolation};
use pinion_engine::runtime::placement::{PinOutcome, allowed_cores, pin_current_thread};
use pinion_engine::runtime::{RingRx, RingTx, ring};

/// Slots per ring: enough that the one-way stream rarely fills, like the pipeline's rings.
const CAPACITY: usize = 1024;
/// `last_id` of the event that ends a one-way batch.
const MARKER: u64 = u64::MAX;

/// The sending end of a queue under test; spins while full.
trait Send1: Send + 'static {
    fn send(&mut self, ev: MarketEvent);
}

/// The receiving end of a queue under test.
trait Recv1: Send + 'static {
    fn recv(&mut self) -> Option<MarketEvent>;
}

impl Send1 for RingTx<MarketEvent> {
    #[inline]
    fn send(&mut self, mut ev: MarketEvent) {
        while let Err(back) = self.try_push(ev) {
            ev = back;
            spin_loop();
        }
    }
}

impl Recv1 for RingRx<MarketEvent> {
    #[inline]
    fn recv(&mut self) -> Option<MarketEvent> {
        self.pop()
    }
}

/// Either end of an `ArrayQueue` (it is multi-producer/multi-consumer, shared through an `Arc`).
struct Crossbeam(Arc<ArrayQueue<MarketEvent>>);

impl Send1 for Crossbeam {
    #[inline]
    fn send(&mut self, mut ev: MarketEvent) {
        while let Err(back) = self.0.push(ev) {
            ev = back;
            spin_loop();
        }
    }
}

impl Recv1 for Crossbeam {
    #[inline]
    fn recv(&mut self) -> Option<MarketEvent> {
        self.0.pop()
    }
}

fn runtime_pair() -> (RingTx<MarketEvent>, RingRx<MarketEvent>) {
    ring(CAPACITY)
}

fn crossbeam_pair() -> (Crossbeam, Crossbeam) {
    let q = Arc::new(ArrayQueue::new(CAPACITY));
    (Crossbeam(Arc::clone(&q)), Crossbeam(q))
}

/// Cores for the bench thread and its peer, and a description of the placement.
struct Placement {
    bench: Option<usize>,
    peer: Option<usize>,
    /// The process's cores, read before the bench thread is pinned.
    allowed: Vec<usize>,
}

fn placement() -> Placement {
    let cores = allowed_cores();
    let (bench, peer) = match cores.as_slice() {
        [] => (None, None),
        [only] => (Some(*only), Some(*only)),
        [.., a, b] => (Some(*a), Some(*b)),
    };
    let host = HostIsolation::read();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "ring bench placement: bench thread on core {bench:?}, peer thread on core {peer:?}; \
         allowed cores {}, isolated {}, nohz_full {}; loadavg {}",
        CpuList(&cores),
        CpuList(&host.isolated),
        CpuList(&host.nohz_full),
        load.trim()
    );
    if bench == peer {
        println!("WARNING: both threads share one core; spinning numbers are meaningless");
    }
    Placement {
        bench,
        peer,
        allowed: cores,
    }
}

fn pin(core: Option<usize>, allowed: &[usize], who: &str) {
    if let Some(core) = core
        && let PinOutcome::Failed(why) = pin_current_thread(core, allowed)
    {
        println!("WARNING: {who} thread not pinned: {why}");
    }
}

/// A peer thread that runs until `stop` is set.
struct Peer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Peer {
    fn spawn(place: &Placement, body: impl FnOnce(&AtomicBool) + Send + 'static) -> Peer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let (core, allowed) = (place.peer, place.allowed.clone());
        let handle = std::thread::spawn(move || {
            pin(core, &allowed, "peer");
            body(&flag);
        });
        Peer {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Echoes every event back until stopped.
fn echo(mut rx: impl Recv1, mut tx: impl Send1, stop: &AtomicBool) {
    loop {
        match rx.recv() {
            Some(ev) => tx.send(ev),
            None if stop.load(Ordering::Relaxed) => return,
            None => spin_loop(),
        }
    }
}

/// Consumes events, acknowledging each batch marker.
fn drain(mut rx: impl Recv1, mut ack: impl Send1, stop: &AtomicBool) {
    let mut sum = 0u64;
    loop {
        match rx.recv() {
            Some(ev) if ev.last_id == MARKER => ack.send(ev),
            Some(ev) => sum = sum.wrapping_add(ev.last_id),
            None if stop.load(Ordering::Relaxed) => break,
            None => spin_loop(),
        }
    }
    black_box(sum);
}

fn round_trip<Tx: Send1, Rx: Recv1>(
    c: &mut Criterion,
    name: &str,
    place: &Placement,
    pair: fn() -> (Tx, Rx),
) {
    let (mut to_peer, from_bench) = pair();
    let (to_bench, mut from_peer) = pair();
    let _peer = Peer::spawn(place, move |stop| echo(from_bench, to_bench, stop));
    let mut ev = MarketEvent::default();
    c.bench_function(&format!("ring/round_trip/{name}"), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                ev.last_id = i;
                to_peer.send(ev);
                loop {
                    if let Some(back) = from_peer.recv() {
                        black_box(back.last_id);
                        break;
                    }
                    spin_loop();
                }
            }
            start.elapsed()
        });
    });
}

fn one_way<Tx: Send1, Rx: Recv1>(
    c: &mut Criterion,
    name: &str,
    place: &Placement,
    pair: fn() -> (Tx, Rx),
) {
    let (mut data, data_rx) = pair();
    let (ack_tx, mut ack) = pair();
    let _peer = Peer::spawn(place, move |stop| drain(data_rx, ack_tx, stop));
    let mut ev = MarketEvent::default();
    let mut group = c.benchmark_group("ring/one_way");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                ev.last_id = i;
                data.send(ev);
            }
            ev.last_id = MARKER;
            data.send(ev);
            while ack.recv().is_none() {
                spin_loop();
            }
            start.elapsed()
        });
    });
    group.finish();
}

fn ring_benches(c: &mut Criterion) {
    let place = placement();
    pin(place.bench, &place.allowed, "bench");
    round_trip(c, "runtime_rtrb", &place, runtime_pair);
    round_trip(c, "crossbeam_array_queue", &place, crossbeam_pair);
    one_way(c, "runtime_rtrb", &place, runtime_pair);
    one_way(c, "crossbeam_array_queue", &place, crossbeam_pair);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = ring_benches
}
criterion_main!(benches);
