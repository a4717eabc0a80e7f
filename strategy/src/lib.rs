//! pinion-strategy: decisions and the order contract.
//!
//! The strategy stage sees book snapshots, trades and execution reports, and writes
//! [`OrderIntent`]s. This crate owns the contract it consumes and produces: `OrderIntent` out,
//! `ExecReport` in; the gateway implements it.
