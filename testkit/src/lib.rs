//! pinion-testkit: helpers shared by pinion's tests and benchmarks, and by nothing else.
//!
//! - [`data`]: the real exchange recordings beside the repository (`../shared/data`), with the
//!   rule for a missing file (skip with a message, or fail under CI).
//! - [`alloc`]: a counting global allocator, for the steady-state allocation tests.
//! - [`pcap_writer`]: pcap and pcapng captures of WebSocket sessions, written from the
//!   specifications, for the capture readers' tests and benchmarks.
//! - [`postgres`]: a throwaway PostgreSQL server, for the shared history's tests.
//!
//! Only ever a dev-dependency: the product never links it.

#![deny(missing_docs)]

pub mod alloc;
pub mod data;
pub mod pcap_writer;
pub mod postgres;
