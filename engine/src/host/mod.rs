//! What the host offers and how quiet it is, read apart from the scheduler that uses it.
//!
//! - [`isolation`]: which cores the kernel set aside (`isolcpus`, `nohz_full`), and the CPU list
//!   syntax they are written in.
//! - [`realtime`]: memory locking and `SCHED_FIFO`, each call reported as a [`SettingOutcome`]
//!   rather than an abort.
//! - [`jitter`]: the host's own stalls (`pinion jitter`), the floor under every latency figure
//!   taken on it.
//!
//! The runtime reads [`isolation`] for its placement report and applies [`realtime`] when it sets
//! a thread up; [`jitter`] in turn pins its probe threads with the runtime's pinning and reads the
//! runtime's clock, so pinning and the clock each exist once. Nothing here runs on the hot path.

pub mod isolation;
pub mod jitter;
pub mod realtime;

pub use isolation::{CpuList, CpuListError, HostIsolation, parse_cpu_list};
pub use realtime::SettingOutcome;
