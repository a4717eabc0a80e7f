//! Faults the live exchange injects, configured up front and applied deterministically.
//!
//! A [`FaultPlan`] is a seed and a list of [`Fault`]s. Each fault names what it does and, where
//! it concerns one connection, which WebSocket session it hits ([`Target`]): sessions are
//! numbered from 0 in the order they were opened (connections killed right after the handshake
//! by [`Fault::KillAfterHandshake`] take no number). Stream frames are numbered per stream from
//! 1, in the order the market releases them, so "the 37th update of `btcusdt@depth@100ms`" is
//! the same frame for every session and every run.
//!
//! The compact spec ([`FaultPlan::parse`]) is a comma-separated list of `kind:arg[:arg]` items,
//! each optionally followed by `#S` to hit session `S` only:
//!
//! | item | fault |
//! |---|---|
//! | `drop:STREAM:K` | the K-th frame of STREAM is not sent |
//! | `dup:STREAM:K` | the K-th frame of STREAM is sent twice |
//! | `swap:STREAM:K` | the K-th and (K+1)-th frames of STREAM are sent in swapped order |
//! | `mute:STREAM:K` | STREAM stops after its K-th frame (other streams go on) |
//! | `rdrop:STREAM:PERMILLE` | each frame of STREAM is dropped with this chance (per mille), drawn from the seed |
//! | `rst:N` | after N frames, part of the next frame is written, then the socket is shut |
//! | `halfopen:N` | after N frames nothing more is sent, pings included; the socket stays open |
//! | `close1008:N` | after N frames the session is closed with 1008 |
//! | `shutdown:MS[:GRACE]` | MS after the session opened, `serverShutdown` is sent, then close 1001 after GRACE ms (default 1000) |
//! | `maxage:MS` | a session is closed (1001) when it is MS old: the 24 h cut, shortened |
//! | `noack:K` | the K-th control request of a session gets no answer (it still takes effect) |
//! | `kill:K` | the first K WebSocket connections are closed right after the handshake |
//! | `connbudget:N[:WINDOW_MS]` | more than N connection attempts per IP within WINDOW_MS (default 300000) are answered 429 |
//! | `slowsnap:MS[:COUNT]` | REST depth answers are delayed by MS (only the first COUNT) |
//! | `stalesnap:K[:COUNT]` | REST depth answers are the book as it stood K updates earlier (only the first COUNT) |
//!
//! Example: `drop:btcusdt@depth@100ms:37#0,rst:500,shutdown:2000`. Stream names are matched in
//! lower case, as Binance names streams.

use std::time::Duration;

/// Which sessions a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    /// Every session.
    #[default]
    All,
    /// The session with this index (0 = the first opened).
    Session(u64),
}

impl Target {
    /// Whether session `index` is hit.
    pub fn hits(self, index: u64) -> bool {
        match self {
            Target::All => true,
            Target::Session(s) => s == index,
        }
    }
}

/// One fault. See the [module docs](self) for the spec form of each.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The `k`-th frame of `stream` (from 1) is not sent.
    Drop {
        /// Stream name.
        stream: String,
        /// Which frame of the stream.
        k: u64,
        /// Who is hit.
        target: Target,
    },
    /// The `k`-th frame of `stream` is sent twice in a row.
    Duplicate {
        /// Stream name.
        stream: String,
        /// Which frame of the stream.
        k: u64,
        /// Who is hit.
        target: Target,
    },
    /// The `k`-th frame of `stream` is held back and sent right after the `k+1`-th.
    Swap {
        /// Stream name.
        stream: String,
        /// Which frame of the stream.
        k: u64,
        /// Who is hit.
        target: Target,
    },
    /// `stream` goes silent after its `k`-th frame; pings and other streams go on.
    Mute {
        /// Stream name.
        stream: String,
        /// Last frame sent.
        k: u64,
        /// Who is hit.
        target: Target,
    },
    /// Each frame of `stream` is dropped with probability `per_mille / 1000`, drawn from the
    /// plan's seed, the session index and the frame number (the same frames every run).
    RandomDrop {
        /// Stream name.
        stream: String,
        /// Chance per frame, in thousandths.
        per_mille: u32,
        /// Who is hit.
        target: Target,
    },
    /// After `after_frames` frames, part of the next frame is written and the socket is shut
    /// down without a close frame (or TLS close_notify).
    ResetMidFrame {
        /// Frames sent before.
        after_frames: u64,
        /// Who is hit.
        target: Target,
    },
    /// After `after_frames` frames nothing more is sent (no frames, no pings, no pongs), and
    /// the socket stays open until the client leaves.
    HalfOpen {
        /// Frames sent before.
        after_frames: u64,
        /// Who is hit.
        target: Target,
    },
    /// After `after_frames` frames the session is closed with code 1008.
    Close1008 {
        /// Frames sent before.
        after_frames: u64,
        /// Who is hit.
        target: Target,
    },
    /// `after` into the session a `serverShutdown` event is sent; `grace` later, close 1001.
    ServerShutdown {
        /// Session age at the notice.
        after: Duration,
        /// Time between the notice and the close.
        grace: Duration,
        /// Who is hit.
        target: Target,
    },
    /// Sessions are closed with 1001 at this age (Binance: 24 h).
    MaxAge {
        /// The age.
        age: Duration,
        /// Who is hit.
        target: Target,
    },
    /// The `k`-th control request (from 1) of a session is carried out but not answered.
    NoAck {
        /// Which request.
        k: u64,
        /// Who is hit.
        target: Target,
    },
    /// The first `count` WebSocket connections are closed right after the `101` (no close
    /// frame).
    KillAfterHandshake {
        /// How many.
        count: u64,
    },
    /// More than `max` connection attempts per IP within `window` are answered 429.
    ConnectionBudget {
        /// Attempts allowed per window.
        max: u64,
        /// The sliding window.
        window: Duration,
    },
    /// REST depth answers wait `delay` first (only the first `count`, when set).
    SlowSnapshot {
        /// The delay.
        delay: Duration,
        /// How many answers are delayed; `None` = all.
        count: Option<u64>,
    },
    /// REST depth answers come from the book as it stood `updates_back` diffs earlier (only
    /// the first `count`, when set).
    StaleSnapshot {
        /// How many diffs back.
        updates_back: u64,
        /// How many answers are stale; `None` = all.
        count: Option<u64>,
    },
}

/// The faults of one run and the seed of its random ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultPlan {
    /// Seed of every random choice (`rdrop`).
    pub seed: u64,
    /// The faults.
    pub faults: Vec<Fault>,
}

/// Why a fault spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad fault spec item {item:?}: {why}")]
pub struct FaultSpecError {
    /// The item.
    pub item: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> Self {
        FaultPlan::default()
    }

    /// Parses the compact spec (see the [module docs](self)); an empty spec is no faults.
    pub fn parse(spec: &str, seed: u64) -> Result<FaultPlan, FaultSpecError> {
        let mut faults = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            faults.push(parse_item(item)?);
        }
        Ok(FaultPlan { seed, faults })
    }
}

fn parse_item(item: &str) -> Result<Fault, FaultSpecError> {
    let err = |why| FaultSpecError {
        item: item.to_owned(),
        why,
    };
    let (body, target) = match item.rsplit_once('#') {
        Some((body, s)) => (
            body,
            Target::Session(
                s.parse()
                    .map_err(|_| err("session after # is not a number"))?,
            ),
        ),
        None => (item, Target::All),
    };
    let mut parts = body.split(':');
    let kind = parts.next().unwrap_or_default();
    let args: Vec<&str> = parts.collect();
    let num = |i: usize| -> Result<u64, FaultSpecError> {
        args.get(i)
            .ok_or_else(|| err("missing argument"))?
            .parse()
            .map_err(|_| err("argument is not a whole number"))
    };
    let opt_num = |i: usize| -> Result<Option<u64>, FaultSpecError> {
        args.get(i)
            .map(|a| a.parse().map_err(|_| err("argument is not a whole number")))
            .transpose()
    };
    let arity = |lo: usize, hi: usize| {
        if (lo..=hi).contains(&args.len()) {
            Ok(())
        } else {
            Err(err("wrong number of arguments"))
        }
    };
    let stream = || -> Result<String, FaultSpecError> {
        let s = args.first().copied().unwrap_or_default();
        if s.is_empty() {
            return Err(err("missing stream name"));
        }
        Ok(s.to_ascii_lowercase())
    };
    let ms = Duration::from_millis;
    let whole_run = |fault: Fault| {
        if target == Target::All {
            Ok(fault)
        } else {
            Err(err(
                "this fault concerns the whole server; it takes no #session",
            ))
        }
    };
    match kind {
        "drop" | "dup" | "swap" | "mute" => {
            arity(2, 2)?;
            let (stream, k) = (stream()?, num(1)?);
            if k == 0 {
                return Err(err("frames are numbered from 1"));
            }
            Ok(match kind {
                "drop" => Fault::Drop { stream, k, target },
                "dup" => Fault::Duplicate { stream, k, target },
                "swap" => Fault::Swap { stream, k, target },
                _ => Fault::Mute { stream, k, target },
            })
        }
        "rdrop" => {
            arity(2, 2)?;
            let per_mille = u32::try_from(num(1)?)
                .ok()
                .filter(|p| *p <= 1000)
                .ok_or_else(|| err("per mille must be 0..=1000"))?;
            Ok(Fault::RandomDrop {
                stream: stream()?,
                per_mille,
                target,
            })
        }
        "rst" | "halfopen" | "close1008" => {
            arity(1, 1)?;
            let after_frames = num(0)?;
            Ok(match kind {
                "rst" => Fault::ResetMidFrame {
                    after_frames,
                    target,
                },
                "halfopen" => Fault::HalfOpen {
                    after_frames,
                    target,
                },
                _ => Fault::Close1008 {
                    after_frames,
                    target,
                },
            })
        }
        "shutdown" => {
            arity(1, 2)?;
            Ok(Fault::ServerShutdown {
                after: ms(num(0)?),
                grace: ms(opt_num(1)?.unwrap_or(1000)),
                target,
            })
        }
        "maxage" => {
            arity(1, 1)?;
            let age = num(0)?;
            if age == 0 {
                return Err(err("age must be positive"));
            }
            Ok(Fault::MaxAge {
                age: ms(age),
                target,
            })
        }
        "noack" => {
            arity(1, 1)?;
            let k = num(0)?;
            if k == 0 {
                return Err(err("requests are numbered from 1"));
            }
            Ok(Fault::NoAck { k, target })
        }
        "kill" => {
            arity(1, 1)?;
            whole_run(Fault::KillAfterHandshake { count: num(0)? })
        }
        "connbudget" => {
            arity(1, 2)?;
            let window = opt_num(1)?.unwrap_or(300_000);
            if window == 0 {
                return Err(err("window must be positive"));
            }
            whole_run(Fault::ConnectionBudget {
                max: num(0)?,
                window: ms(window),
            })
        }
        "slowsnap" => {
            arity(1, 2)?;
            whole_run(Fault::SlowSnapshot {
                delay: ms(num(0)?),
                count: opt_num(1)?,
            })
        }
        "stalesnap" => {
            arity(1, 2)?;
            whole_run(Fault::StaleSnapshot {
                updates_back: num(0)?,
                count: opt_num(1)?,
            })
        }
        _ => Err(err("unknown fault kind")),
    }
}

/// A 64-bit mix (splitmix64's finaliser): the same input gives the same output everywhere.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_grammar_round_trips_every_kind() {
        let plan = FaultPlan::parse(
            "drop:BTCUSDT@depth@100ms:37#1, dup:x@trade:2,swap:x@trade:3,mute:x@depth:9,rdrop:x@depth:50,\
             rst:500,halfopen:7#0,close1008:3,shutdown:2000,shutdown:10:5,maxage:1500,noack:1#2,\
             kill:3,connbudget:10:1000,slowsnap:200:1,stalesnap:4",
            9,
        )
        .expect("valid spec");
        assert_eq!(plan.seed, 9);
        assert_eq!(plan.faults.len(), 16);
        assert_eq!(
            plan.faults[0],
            Fault::Drop {
                stream: "btcusdt@depth@100ms".into(),
                k: 37,
                target: Target::Session(1)
            }
        );
        assert_eq!(
            plan.faults[9],
            Fault::ServerShutdown {
                after: Duration::from_millis(10),
                grace: Duration::from_millis(5),
                target: Target::All
            }
        );
        assert_eq!(
            plan.faults[13],
            Fault::ConnectionBudget {
                max: 10,
                window: Duration::from_millis(1000)
            }
        );
        assert_eq!(FaultPlan::parse("", 0).expect("empty").faults, vec![]);
    }

    #[test]
    fn bad_items_say_what_is_wrong() {
        for bad in [
            "drop:x@depth",
            "drop:x@depth:0",
            "drop::3",
            "rst",
            "rst:abc",
            "kill:3#1",
            "rdrop:x:1001",
            "explode:1",
            "maxage:0",
            "shutdown:1:2:3",
            "rst:5#x",
        ] {
            let e = FaultPlan::parse(bad, 0).expect_err(bad);
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
