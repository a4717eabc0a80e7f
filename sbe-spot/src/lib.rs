//! Zero-copy readers for Binance Spot's SBE schema 3:5, the encoding the WebSocket API answers
//! in when a session asks for `responseFormat=sbe&sbeSchemaId=3&sbeSchemaVersion=5`.
//!
//! The views are generated at build time (`build.rs`) from the pinned schema in
//! `schema/spot_3_5.xml`: one `XxxView<'a>` per message, one `XxxEntry<'a>` per repeating group,
//! an enum per schema enum (with an `Unrecognised` fallback) and a bit-set type per schema set.
//! A view is built by walking the whole frame once, so every block, group and data field is
//! checked against the frame before any accessor runs; a malformed frame is an [`SbeError`],
//! never a panic. Nothing is allocated while reading.
//!
//! [`lifecycle`] checks a schema id and version against the exchange's published life-cycle.
//!

#![forbid(unsafe_code)]

pub mod codec;
pub mod lifecycle;

pub use codec::{
    Decimal, Decimal128, GroupIter, HEADER_LEN, Header, SCHEMA_ID, SCHEMA_VERSION, SbeError,
};

/// The generated views, enums and sets of `spot_3_5.xml`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod spot {
    use crate::codec::{Decimal, Decimal128, HEADER_LEN, Header, SbeError};
    include!(concat!(env!("OUT_DIR"), "/spot.rs"));
}

pub use spot::{Message, decode};

/// The pinned schema's XML (`schema/spot_3_5.xml`), for tools that write frames from it.
pub const SCHEMA_XML: &str = include_str!("../schema/spot_3_5.xml");
