//! Readers for cryptofeed recordings: the raw text captures (`.cryptofeed.ws` with its
//! `.cryptofeed.http`) and the JSON-lines captures (`.cryptofeed.jsonl.zst`).

mod json_string;
pub mod jsonl;
pub mod text;

pub use jsonl::CryptofeedJsonlReader;
pub use text::{CryptofeedTextReader, HttpLine, companion_paths, open_companion, parse_http_line};
