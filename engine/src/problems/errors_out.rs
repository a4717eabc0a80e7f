//! The `--errors-out` file: every problem of a run, one JSON object a line, written by a thread
//! of its own so the stages never wait on I/O.
//!
//! Each stage that finds problems gets the producing end of a preallocated SPSC ring
//! ([`ErrorsOutTx`]) and pushes a [`Problem`] by value; the writer drains every ring, writes the
//! lines through a buffer, and ends when every producer has let go (a stage does so when it
//! finishes) and the rings are empty. A full ring is not waited on: the stage counts the problem
//! as missing from the file (see [`ProblemLog`](super::ProblemLog)).
//!
//! A line: `{"kind":"decode.bad_number","class":"decode","venue":"binance-spot",
//! "symbol":"BTCUSDT","connection":null,"record":12,"line":12,"position":null,
//! "t_recv":1723161290000000000,"detail":"field \"p\": …","text":"…","text_bytes":412}`.
//! `text` holds the record's first 200 bytes as a JSON string (invalid UTF-8 escaped as
//! `\xNN`); `text_bytes` its full length.

use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use pinion_core::Instruments;
use serde_json::{Value, json};

use super::{Problem, Subject, escape};

/// The producing end of a stage's ring to the writer.
pub type ErrorsOutTx = rtrb::Producer<Problem>;

/// Problems each ring holds (about 400 bytes each): a burst of this many in less time than the
/// writer's pause (2 ms) is what it takes to lose one.
pub const RING_PROBLEMS: usize = 8192;

/// How long the writer sleeps when every ring is empty.
const IDLE_PAUSE: Duration = Duration::from_millis(2);

/// The running writer. See the module docs.
#[derive(Debug)]
pub struct ErrorsOut {
    path: PathBuf,
    thread: JoinHandle<io::Result<u64>>,
}

impl ErrorsOut {
    /// Starts the writer on `file` (already created, at `path`) with one ring per producer;
    /// `instruments` names the problems' instruments.
    pub fn start(
        file: File,
        path: &Path,
        instruments: Instruments,
        producers: usize,
    ) -> io::Result<(Self, Vec<ErrorsOutTx>)> {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..producers)
            .map(|_| rtrb::RingBuffer::new(RING_PROBLEMS))
            .unzip();
        let thread = std::thread::Builder::new()
            .name("errors-out".into())
            .spawn(move || write_all(BufWriter::new(file), rxs, &instruments))?;
        Ok((
            Self {
                path: path.to_path_buf(),
                thread,
            },
            txs,
        ))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the writer to drain every ring and returns how many problems it wrote.
    /// Returns once the producers are gone (dropped or closed by their stages).
    pub fn finish(self) -> io::Result<u64> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the errors-out writer panicked")))
    }
}

fn write_all(
    mut out: BufWriter<File>,
    mut rxs: Vec<rtrb::Consumer<Problem>>,
    instruments: &Instruments,
) -> io::Result<u64> {
    let mut written = 0u64;
    loop {
        let mut any = false;
        for rx in &mut rxs {
            while let Ok(p) = rx.pop() {
                serde_json::to_writer(&mut out, &problem_json(&p, instruments))?;
                out.write_all(b"\n")?;
                written += 1;
                any = true;
            }
        }
        if !any {
            // Abandoned first, then empty: a value pushed before the producer let go is seen.
            if rxs.iter().all(|rx| rx.is_abandoned() && rx.is_empty()) {
                break;
            }
            out.flush()?;
            std::thread::sleep(IDLE_PAUSE);
        }
    }
    out.flush()?;
    Ok(written)
}

/// A problem as the JSON object of its line (and of the report's samples).
pub fn problem_json(p: &Problem, instruments: &Instruments) -> Value {
    let (venue, symbol, connection) = match p.subject {
        Subject::Instrument(id) => {
            let spec = instruments.get(id);
            (
                spec.map(|s| s.venue.name().to_owned()),
                spec.map(|s| s.symbol.to_string()),
                None,
            )
        }
        Subject::Connection(c) => (None, None, Some(c.0)),
        Subject::Input => (None, None, None),
    };
    json!({
        "kind": p.kind.name(),
        "class": p.kind.class().name(),
        "venue": venue,
        "symbol": symbol,
        "connection": connection,
        "record": p.record,
        "line": p.line,
        "position": p.position,
        "t_recv": p.t_recv,
        "detail": p.detail.as_str(),
        "text": escape(&p.text),
        "text_bytes": p.text_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problems::ProblemKind;

    #[test]
    fn every_pushed_problem_is_written_once_the_producers_let_go() {
        let dir = std::env::temp_dir().join(format!("pinion-errors-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("e.jsonl");
        let file = File::create(&path).unwrap();
        let (w, mut txs) = ErrorsOut::start(file, &path, Instruments::new(), 2).unwrap();
        let mut b = txs.pop().unwrap();
        let mut a = txs.pop().unwrap();
        for i in 0..100 {
            let mut p = Problem::new(ProblemKind::Json, Subject::Input).with_text(b"{\"x");
            p.record = Some(i);
            a.push(p).unwrap();
        }
        b.push(Problem::new(ProblemKind::Gap, Subject::Input))
            .unwrap();
        drop((a, b));
        assert_eq!(w.finish().unwrap(), 101);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 101);
        assert_eq!(lines[0]["kind"], "decode.json");
        assert_eq!(lines[0]["text"], "{\"x");
        assert_eq!(lines[99]["record"], 99);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
