//! What a [`SimVenue`](super::SimVenue) is built with: its latency models, queue model, seed and
//! hard limits.

use pinion_core::Qty;

use super::{LatencyModel, QueueModel};

/// The venue's latencies, one model per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimLatency {
    /// From `submit` to the venue acting on the request (order entry).
    pub request: LatencyModel,
    /// From a venue event to its report reaching the client (responses).
    pub report: LatencyModel,
}

impl SimLatency {
    /// Constant latencies, ns.
    pub const fn constant(request_ns: u64, report_ns: u64) -> Self {
        Self {
            request: LatencyModel::constant(request_ns),
            report: LatencyModel::constant(report_ns),
        }
    }
}

/// How a [`SimVenue`](super::SimVenue) behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimVenueConfig {
    /// Latencies.
    pub latency: SimLatency,
    /// How cancels at a resting order's price move it forward.
    pub queue: QueueModel,
    /// Seed of the latency draws. Each instrument's venue draws its own streams from it, so
    /// the same seed gives the same draws on every run.
    pub seed: u64,
    /// Hard limit on open orders (at most [`MAX_SIM_ORDERS`](super::MAX_SIM_ORDERS)).
    pub max_open_orders: usize,
    /// Hard limit on one order's quantity.
    pub max_order_qty: Qty,
}
