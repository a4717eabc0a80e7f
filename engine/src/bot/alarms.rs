//! The operators' own alarms (`/alert SYMBOL > PRICE`, on the spread or the top-of-book
//! imbalance too): checked by the bot's thread every tick against the top of book the book
//! stage publishes ([`BookStates::top`](crate::metrics::BookStates::top): a sequence-locked
//! read, nothing on the hot path knows it is watched), each fired once, then gone.
//!
//! What is measured, on a synced top with both sides:
//! - `price`: the mid, halfway between the best bid and the best ask;
//! - `spread`: the best ask less the best bid;
//! - `imbalance`: (bid quantity − ask quantity) / (bid quantity + ask quantity) at the best
//!   levels, from −1 (all on the ask) to 1 (all on the bid).
//!
//! `>` fires once the measure is at or above the threshold, `<` once at or below. An alarm
//! whose condition already holds when it is set fires on the next look.
//!
//! The alarms are kept in a file (`[bot] alerts_file`), rewritten whole after every change
//! (written beside it, synced, then renamed over it, so a crash leaves the old list or the
//! new one), and read back at start, so they survive a restart. Thresholds are kept as the
//! text the operator gave and scaled again at start: a file never holds a number in units
//! that might have changed.
//!
//! The instrument is named as for every command ([`crate::control::names`]): a symbol the run
//! trades on several venues must be given as `VENUE:SYMBOL`. An alarm given with its venue keeps
//! it in the file (an alarm saved bare reads as before); one read back bare whose symbol now
//! trades on several venues is dropped, and said, rather than set on a venue it never named.

use std::path::{Path, PathBuf};

use pinion_core::decimal::parse_scaled;

use super::commands::fixed;
use crate::control::{find_instrument, names::qualified};
use crate::metrics::TopOfBook;

/// The imbalance's threshold scale: parts per million.
const IMBALANCE_DECIMALS: u8 = 6;

/// Most alarms kept at once (a mistyped loop of `/alert` cannot grow the file without end).
pub const MAX_ALARMS: usize = 200;

/// What an alarm watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// The mid price.
    Price,
    /// Best ask less best bid.
    Spread,
    /// Top-of-book quantity imbalance, −1 to 1.
    Imbalance,
}

impl Measure {
    /// The word operators type and read.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Price => "price",
            Self::Spread => "spread",
            Self::Imbalance => "imbalance",
        }
    }
}

/// Above or below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Cmp {
    /// At or above.
    #[serde(rename = ">")]
    Above,
    /// At or below.
    #[serde(rename = "<")]
    Below,
}

impl Cmp {
    /// `>` or `<`.
    pub const fn sign(self) -> &'static str {
        match self {
            Self::Above => ">",
            Self::Below => "<",
        }
    }
}

/// One alarm, as kept in the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Alarm {
    /// Its number (`/unalert N`), never reused in one file.
    pub number: u64,
    /// Who set it.
    pub user: i64,
    /// Where it is told.
    pub chat: i64,
    /// The instrument's symbol.
    pub symbol: String,
    /// The instrument's venue, when the operator named it (`VENUE:SYMBOL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// What it watches.
    pub measure: Measure,
    /// Above or below.
    pub cmp: Cmp,
    /// The threshold as given.
    pub threshold: String,
}

impl Alarm {
    /// The instrument as the operator named it: `SYMBOL`, or `VENUE:SYMBOL`.
    pub fn name(&self) -> String {
        match &self.venue {
            Some(v) => qualified(v, &self.symbol),
            None => self.symbol.clone(),
        }
    }
}

/// The file's contents.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct File {
    next: u64,
    alarms: Vec<Alarm>,
}

/// An alarm with its threshold in the instrument's units, ready to check.
#[derive(Debug, Clone)]
struct Armed {
    alarm: Alarm,
    /// The book slot (the instrument id).
    book: usize,
    /// The threshold scaled: price units, or parts per million for the imbalance.
    threshold: i64,
    /// The instrument's price decimals.
    price_decimals: u8,
}

/// Why an alarm could not be set, kept or read.
#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    /// The command's words do not make an alarm.
    #[error("{0}")]
    Usage(String),
    /// The alarms file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The alarms file is not a list of alarms.
    #[error("{}: not an alarms file ({why})", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
}

/// An alarm that fired: where to tell it, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// The chat to tell.
    pub chat: i64,
    /// The message.
    pub text: String,
}

/// The alarms. See the module docs.
#[derive(Debug)]
pub struct Alarms {
    path: Option<PathBuf>,
    next: u64,
    armed: Vec<Armed>,
    /// `(symbol, venue, price decimals)` by instrument id.
    instruments: Vec<(String, &'static str, u8)>,
}

impl Alarms {
    /// Alarms kept in memory only (lost at a restart), over `instruments`.
    pub fn in_memory(instruments: Vec<(String, &'static str, u8)>) -> Self {
        Alarms {
            path: None,
            next: 1,
            armed: Vec::new(),
            instruments,
        }
    }

    /// The alarms kept in `path` (none when it does not exist yet; `None`: kept in memory only,
    /// lost at a restart), over `instruments` (`(symbol, venue, price decimals)` by instrument
    /// id). An alarm whose instrument is no longer configured (or, saved bare, now trades on
    /// several venues), or whose threshold no longer fits its units, is dropped and said in the
    /// returned notes.
    pub fn load(
        path: Option<&Path>,
        instruments: Vec<(String, &'static str, u8)>,
    ) -> Result<(Self, Vec<String>), AlarmError> {
        let mut me = Alarms {
            path: path.map(Path::to_path_buf),
            ..Alarms::in_memory(instruments)
        };
        let mut notes = Vec::new();
        let Some(path) = path else {
            return Ok((me, notes));
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((me, notes)),
            Err(source) => {
                return Err(AlarmError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let file: File = serde_json::from_str(&text).map_err(|e| AlarmError::Format {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        me.next = file.next.max(1);
        for alarm in file.alarms {
            me.next = me.next.max(alarm.number.saturating_add(1));
            match me.arm(alarm.clone()) {
                Ok(a) => me.armed.push(a),
                Err(why) => notes.push(format!("alert #{} dropped: {why}", alarm.number)),
            }
        }
        Ok((me, notes))
    }

    /// The alarms set, oldest first.
    pub fn list(&self) -> impl Iterator<Item = &Alarm> + '_ {
        self.armed.iter().map(|a| &a.alarm)
    }

    /// Sets an alarm from `/alert`'s words (`SYMBOL [price|spread|imbalance] >|< VALUE`,
    /// `VENUE:SYMBOL` for a symbol on several venues) for `user` in `chat`; the alarm set,
    /// saved.
    pub fn set(&mut self, user: i64, chat: i64, words: &[&str]) -> Result<Alarm, AlarmError> {
        let usage = || {
            AlarmError::Usage(
                "Usage: /alert SYMBOL > PRICE, /alert SYMBOL < PRICE, \
/alert SYMBOL spread > VALUE, /alert SYMBOL imbalance > -1..1"
                    .to_owned(),
            )
        };
        let (symbol, measure, cmp, value) = match words {
            [s, c, v] => (*s, Measure::Price, *c, *v),
            [s, m, c, v] => {
                let measure = match m.to_ascii_lowercase().as_str() {
                    "price" | "mid" => Measure::Price,
                    "spread" => Measure::Spread,
                    "imbalance" => Measure::Imbalance,
                    _ => return Err(usage()),
                };
                (*s, measure, *c, *v)
            }
            _ => return Err(usage()),
        };
        let cmp = match cmp {
            ">" | ">=" => Cmp::Above,
            "<" | "<=" => Cmp::Below,
            _ => return Err(usage()),
        };
        if self.armed.len() >= MAX_ALARMS {
            return Err(AlarmError::Usage(format!(
                "{MAX_ALARMS} alerts are set already: /unalert some first."
            )));
        }
        let book =
            find_instrument(self.names(), symbol).map_err(|e| AlarmError::Usage(e.to_string()))?;
        let (sym, venue, _) = &self.instruments[book];
        let alarm = Alarm {
            number: self.next,
            user,
            chat,
            symbol: sym.clone(),
            venue: symbol.contains(':').then(|| (*venue).to_owned()),
            measure,
            cmp,
            threshold: value.to_owned(),
        };
        let armed = self.arm(alarm).map_err(AlarmError::Usage)?;
        self.next += 1;
        let set = armed.alarm.clone();
        self.armed.push(armed);
        self.save()?;
        Ok(set)
    }

    /// Removes alarm `number`; the alarm removed (`None`: no such alarm), saved.
    pub fn remove(&mut self, number: u64) -> Result<Option<Alarm>, AlarmError> {
        let Some(at) = self.armed.iter().position(|a| a.alarm.number == number) else {
            return Ok(None);
        };
        let gone = self.armed.remove(at).alarm;
        self.save()?;
        Ok(Some(gone))
    }

    /// Checks every alarm against the tops `top` gives (by instrument id); those that fire are
    /// removed (saved once) and returned. A save that fails is returned beside them: the
    /// alarms fired all the same, and the file still lists them until the next save.
    pub fn check(
        &mut self,
        top: impl Fn(usize) -> Option<TopOfBook>,
    ) -> (Vec<Fired>, Option<AlarmError>) {
        let mut fired = Vec::new();
        self.armed.retain(|a| {
            let Some(value) = top(a.book).and_then(|t| measure(&t, a.alarm.measure)) else {
                return true;
            };
            let hit = match a.alarm.cmp {
                Cmp::Above => value >= a.threshold,
                Cmp::Below => value <= a.threshold,
            };
            if hit {
                fired.push(Fired {
                    chat: a.alarm.chat,
                    text: format!(
                        "ALERT #{} {}: {} {} (alert {} {} {}, set by {})",
                        a.alarm.number,
                        a.alarm.name(),
                        a.alarm.measure.name(),
                        shown(a.alarm.measure, value, a.price_decimals),
                        a.alarm.measure.name(),
                        a.alarm.cmp.sign(),
                        a.alarm.threshold,
                        a.alarm.user
                    ),
                });
            }
            !hit
        });
        let failed = if fired.is_empty() {
            None
        } else {
            self.save().err()
        };
        (fired, failed)
    }

    /// Each instrument's `(symbol, venue)`, by id.
    fn names(&self) -> impl Iterator<Item = (&str, &'static str)> + '_ {
        self.instruments.iter().map(|(s, v, _)| (s.as_str(), *v))
    }

    /// An alarm scaled to its instrument, or why it cannot be.
    fn arm(&self, alarm: Alarm) -> Result<Armed, String> {
        let book = find_instrument(self.names(), &alarm.name()).map_err(|e| e.to_string())?;
        let price_decimals = &self.instruments[book].2;
        let decimals = match alarm.measure {
            Measure::Imbalance => IMBALANCE_DECIMALS,
            Measure::Price | Measure::Spread => *price_decimals,
        };
        let threshold = parse_scaled(alarm.threshold.as_bytes(), decimals)
            .map_err(|e| format!("{:?} is not a value here: {e}", alarm.threshold))?;
        let fits = match alarm.measure {
            Measure::Price => threshold > 0,
            Measure::Spread => threshold >= 0,
            Measure::Imbalance => threshold.abs() <= 10i64.pow(u32::from(IMBALANCE_DECIMALS)),
        };
        if !fits {
            return Err(format!(
                "{} is out of range for the {}",
                alarm.threshold,
                alarm.measure.name()
            ));
        }
        Ok(Armed {
            alarm,
            book,
            threshold,
            price_decimals: *price_decimals,
        })
    }

    /// Rewrites the file whole: beside it, synced, renamed over it.
    fn save(&self) -> Result<(), AlarmError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io = |source| AlarmError::Io {
            path: path.clone(),
            source,
        };
        let file = File {
            next: self.next,
            alarms: self.list().cloned().collect(),
        };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| AlarmError::Format {
            path: path.clone(),
            why: e.to_string(),
        })?;
        let mut tmp = path.clone().into_os_string();
        tmp.push(".new");
        let tmp = PathBuf::from(tmp);
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&text).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// The measure of a synced top with both sides, in the alarm's scale.
fn measure(top: &TopOfBook, m: Measure) -> Option<i64> {
    if !top.synced {
        return None;
    }
    let (bid, ask) = (top.bid?, top.ask?);
    Some(match m {
        Measure::Price => i64::try_from((i128::from(bid.px.0) + i128::from(ask.px.0)) / 2).ok()?,
        Measure::Spread => ask.px.0 - bid.px.0,
        Measure::Imbalance => {
            let (b, a) = (i128::from(bid.qty.0), i128::from(ask.qty.0));
            if b + a <= 0 {
                return None;
            }
            let scale = i128::from(10i64.pow(u32::from(IMBALANCE_DECIMALS)));
            i64::try_from((b - a) * scale / (b + a)).ok()?
        }
    })
}

/// A measured value as operators read it.
fn shown(m: Measure, value: i64, price_decimals: u8) -> String {
    match m {
        Measure::Imbalance => fixed(value, IMBALANCE_DECIMALS),
        Measure::Price | Measure::Spread => fixed(value, price_decimals),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_core::{Level, Px, Qty};

    fn top(bid: (i64, i64), ask: (i64, i64)) -> TopOfBook {
        TopOfBook {
            bid: Some(Level {
                px: Px(bid.0),
                qty: Qty(bid.1),
            }),
            ask: Some(Level {
                px: Px(ask.0),
                qty: Qty(ask.1),
            }),
            synced: true,
            t_recv: 1,
        }
    }

    fn instruments() -> Vec<(String, &'static str, u8)> {
        vec![
            ("BTCUSDT".to_owned(), "binance-spot", 2),
            ("ETHUSDT".to_owned(), "binance-spot", 2),
        ]
    }

    #[test]
    fn an_alarm_fires_once_and_the_list_survives_a_reload() {
        let dir = std::env::temp_dir().join(format!("pinion-alarms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("alerts.json");
        let _ = std::fs::remove_file(&path);
        let (mut a, notes) = Alarms::load(Some(&path), instruments()).expect("load");
        assert!(notes.is_empty());
        let set = a.set(7, 7, &["btcusdt", ">", "65000.5"]).expect("set");
        assert_eq!((set.number, set.symbol.as_str()), (1, "BTCUSDT"));
        a.set(7, 7, &["ETHUSDT", "spread", ">", "0.5"])
            .expect("spread");
        a.set(8, 8, &["BTCUSDT", "imbalance", "<", "-0.5"])
            .expect("imbalance");
        assert!(matches!(
            a.set(7, 7, &["BTCUSDT", ">", "1.001"]),
            Err(AlarmError::Usage(_))
        ));
        assert!(matches!(
            a.set(7, 7, &["NOPE", ">", "1"]),
            Err(AlarmError::Usage(_))
        ));
        assert!(matches!(
            a.set(7, 7, &["BTCUSDT", "imbalance", ">", "2"]),
            Err(AlarmError::Usage(_))
        ));
        // Below the threshold: nothing.
        let below = |i: usize| (i == 0).then(|| top((6_500_000, 10), (6_500_090, 10)));
        let (fired, err) = a.check(below);
        assert!(fired.is_empty() && err.is_none());
        // The mid reaches 65000.5: fired, once.
        let at = |i: usize| (i == 0).then(|| top((6_500_000, 10), (6_500_100, 10)));
        let (fired, err) = a.check(at);
        assert!(err.is_none());
        assert_eq!(
            fired,
            [Fired {
                chat: 7,
                text: "ALERT #1 BTCUSDT: price 65000.5 (alert price > 65000.5, set by 7)"
                    .to_owned()
            }]
        );
        assert!(a.check(at).0.is_empty(), "an alarm fires once");
        // The other two are still set, and read back after a restart.
        let (b, notes) = Alarms::load(Some(&path), instruments()).expect("reload");
        assert!(notes.is_empty(), "{notes:?}");
        let numbers: Vec<u64> = b.list().map(|x| x.number).collect();
        assert_eq!(numbers, [2, 3]);
        // An imbalance of -0.8 (1 bid against 9 asked) fires the third.
        let mut b = b;
        let heavy_ask = |i: usize| (i == 0).then(|| top((6_500_000, 1), (6_500_100, 9)));
        let (fired, _) = b.check(heavy_ask);
        assert_eq!(fired.len(), 1);
        assert!(fired[0].text.contains("imbalance -0.8"), "{fired:?}");
        assert_eq!(b.remove(2).expect("remove").map(|x| x.number), Some(2));
        assert_eq!(b.remove(2).expect("again"), None);
        let (c, _) = Alarms::load(Some(&path), instruments()).expect("reload");
        assert_eq!(c.list().count(), 0);
        // Numbers are not reused.
        let mut c = c;
        assert_eq!(c.set(7, 7, &["BTCUSDT", "<", "1"]).expect("set").number, 4);
        // An instrument no longer configured drops its alarm, and says so.
        let (d, notes) =
            Alarms::load(Some(&path), vec![("ETHUSDT".to_owned(), "binance-spot", 2)]).expect("d");
        assert_eq!(d.list().count(), 0);
        assert_eq!(notes, ["alert #4 dropped: No instrument BTCUSDT."]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_symbol_on_two_venues_needs_its_venue_and_keeps_it_over_a_reload() {
        let dir = std::env::temp_dir().join(format!("pinion-alarms-2v-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("alerts.json");
        let _ = std::fs::remove_file(&path);
        let two = || {
            vec![
                ("BTCUSDT".to_owned(), "binance-spot", 2),
                ("BTCUSDT".to_owned(), "bybit-spot", 1),
            ]
        };
        let (mut a, _) = Alarms::load(Some(&path), two()).expect("load");
        let Err(AlarmError::Usage(why)) = a.set(7, 7, &["btcusdt", ">", "65000"]) else {
            panic!("a bare symbol on two venues set an alarm");
        };
        assert_eq!(
            why,
            "BTCUSDT trades on binance-spot and bybit-spot: say binance-spot:BTCUSDT or bybit-spot:BTCUSDT."
        );
        assert!(matches!(
            a.set(7, 7, &["bybit:BTCUSDT", ">", "65000"]),
            Err(AlarmError::Usage(_))
        ));
        let set = a
            .set(7, 7, &["BYBIT-SPOT:btcusdt", ">", "65000.5"])
            .expect("qualified");
        assert_eq!(set.name(), "bybit-spot:BTCUSDT");
        assert_eq!(set.venue.as_deref(), Some("bybit-spot"));
        // Bybit's price has one decimal here: 65000.55 does not fit it.
        assert!(
            a.set(7, 7, &["bybit-spot:BTCUSDT", ">", "65000.55"])
                .is_err()
        );
        // It watches the Bybit book (slot 1) only.
        let (fired, _) = a.check(|i| (i == 0).then(|| top((650_010, 1), (650_020, 1))));
        assert!(fired.is_empty(), "{fired:?}");
        // Read back after a restart with its venue, and still on slot 1.
        let (mut b, notes) = Alarms::load(Some(&path), two()).expect("reload");
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            b.list().map(Alarm::name).collect::<Vec<_>>(),
            ["bybit-spot:BTCUSDT"]
        );
        let (fired, _) = b.check(|i| (i == 1).then(|| top((650_000, 1), (650_010, 1))));
        assert_eq!(
            fired,
            [Fired {
                chat: 7,
                text:
                    "ALERT #1 bybit-spot:BTCUSDT: price 65000.5 (alert price > 65000.5, set by 7)"
                        .to_owned()
            }]
        );
        // An alarm saved bare when the symbol traded on one venue is dropped, and said, once
        // it trades on two: it is not moved to a venue it never named.
        let _ = std::fs::remove_file(&path);
        let (mut one, _) =
            Alarms::load(Some(&path), vec![("BTCUSDT".to_owned(), "binance-spot", 2)])
                .expect("one venue");
        let bare = one.set(7, 7, &["BTCUSDT", "<", "1"]).expect("bare");
        assert_eq!(bare.venue, None);
        let saved = std::fs::read_to_string(&path).expect("saved");
        assert!(!saved.contains("venue"), "{saved}");
        let (c, notes) = Alarms::load(Some(&path), two()).expect("reload");
        assert_eq!(c.list().count(), 0);
        assert_eq!(
            notes,
            [
                "alert #1 dropped: BTCUSDT trades on binance-spot and bybit-spot: say binance-spot:BTCUSDT or bybit-spot:BTCUSDT."
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unsynced_or_one_sided_book_fires_nothing() {
        let (mut a, _) = Alarms::load(None, instruments()).expect("load");
        a.set(1, 1, &["BTCUSDT", ">", "1"]).expect("set");
        let unsynced = |_: usize| {
            Some(TopOfBook {
                synced: false,
                ..top((100, 1), (200, 1))
            })
        };
        assert!(a.check(unsynced).0.is_empty());
        let one_sided = |_: usize| {
            Some(TopOfBook {
                ask: None,
                ..top((100, 1), (200, 1))
            })
        };
        assert!(a.check(one_sided).0.is_empty());
        assert_eq!(a.list().count(), 1);
    }
}
