//! What the bot has to say, per chat, paced to the Bot API's limits and coalesced under bursts.
//!
//! Each chat has a queue of notes (a reply, an alert). When the chat may be sent to (its own
//! pacer: about one message a second; the global pacer: about thirty a second) every note
//! queued for it goes out as one message, as many as fit in [`MAX_TEXT`]; a burst of alerts
//! thus arrives as a message or two, not one each. A failed send puts its notes back at the
//! front in order and holds every chat back for an outage back-off (doubling up to a cap, or
//! the API's own `retry_after`), so nothing is lost while the API is away and everything queued
//! meanwhile arrives coalesced once it returns. A queue is bounded ([`MAX_NOTES`]): past it the
//! oldest notes are dropped and the next message says how many.
//!
//! A note with buttons (a confirmation's inline keyboard) goes out as a message of its own,
//! never coalesced: the buttons belong to its text.
//!
//! Time is passed in (`Instant`), so the pacing is tested without waiting.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::api::{ApiError, Button, MAX_TEXT, clip};

/// One note: its text, and the buttons it carries (none for most).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Note {
    text: String,
    buttons: Vec<Button>,
}

/// Notes kept per chat while they cannot be sent.
pub const MAX_NOTES: usize = 500;

/// Between two notes of one message.
const SEPARATOR: &str = "\n\n";

/// One chat's queue.
#[derive(Debug)]
struct ChatQueue {
    notes: VecDeque<Note>,
    /// When the chat may next be sent to.
    next_at: Option<Instant>,
    dropped: u64,
}

/// Pacing of the outgoing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Messages per second to one chat.
    pub per_chat: u32,
    /// Messages per second overall.
    pub global: u32,
    /// First outage back-off.
    pub backoff_base: Duration,
    /// Longest outage back-off.
    pub backoff_cap: Duration,
}

/// Counters of the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Notes queued.
    pub notes: u64,
    /// Messages sent.
    pub sent: u64,
    /// Notes that went out in a message with others.
    pub coalesced: u64,
    /// Sends that failed.
    pub failures: u64,
    /// Notes dropped from a full queue.
    pub dropped: u64,
}

/// The per-chat queues and pacers. See the module docs.
#[derive(Debug)]
pub struct Outbox {
    chats: BTreeMap<i64, ChatQueue>,
    /// When the last `pacing.global` messages went, oldest first (a one-second sliding window).
    recent: VecDeque<Instant>,
    pacing: Pacing,
    hold_until: Option<Instant>,
    failures: u32,
    stats: OutboxStats,
}

impl Outbox {
    /// An empty outbox; `pacing`'s rates are at least 1.
    pub fn new(pacing: Pacing) -> Self {
        Outbox {
            chats: BTreeMap::new(),
            recent: VecDeque::new(),
            pacing,
            hold_until: None,
            failures: 0,
            stats: OutboxStats::default(),
        }
    }

    /// Queues `note` for `chat`.
    pub fn push(&mut self, chat: i64, note: String) {
        self.push_with_buttons(chat, note, Vec::new());
    }

    /// Queues `note` for `chat` with `buttons` (an inline keyboard): sent as a message alone.
    pub fn push_with_buttons(&mut self, chat: i64, note: String, buttons: Vec<Button>) {
        let note = Note {
            text: note,
            buttons,
        };
        let q = self.chats.entry(chat).or_insert_with(|| ChatQueue {
            notes: VecDeque::new(),
            next_at: None,
            dropped: 0,
        });
        q.notes.push_back(note);
        self.stats.notes += 1;
        while q.notes.len() > MAX_NOTES {
            q.notes.pop_front();
            q.dropped += 1;
            self.stats.dropped += 1;
        }
    }

    /// Notes waiting, over every chat.
    pub fn pending(&self) -> usize {
        self.chats.values().map(|q| q.notes.len()).sum()
    }

    /// The counters.
    pub fn stats(&self) -> OutboxStats {
        self.stats
    }

    /// Whether sends are held back after a failure, until when.
    pub fn held_until(&self) -> Option<Instant> {
        self.hold_until
    }

    /// Sends what may be sent at `now` through `send` (chat, text, buttons); stops at the first
    /// failure, which starts the back-off. Returns the failure, if any.
    pub fn flush(
        &mut self,
        now: Instant,
        mut send: impl FnMut(i64, &str, &[Button]) -> Result<(), ApiError>,
    ) -> Option<ApiError> {
        if self.hold_until.is_some_and(|t| now < t) {
            return None;
        }
        let spacing = Duration::from_secs(1) / self.pacing.per_chat.max(1);
        let global = usize::try_from(self.pacing.global.max(1)).unwrap_or(usize::MAX);
        let chats: Vec<i64> = self
            .chats
            .iter()
            .filter(|(_, q)| !q.notes.is_empty())
            .map(|(c, _)| *c)
            .collect();
        for chat in chats {
            let Some(q) = self.chats.get_mut(&chat) else {
                continue;
            };
            while self
                .recent
                .front()
                .is_some_and(|&t| now.saturating_duration_since(t) >= Duration::from_secs(1))
            {
                self.recent.pop_front();
            }
            if q.next_at.is_some_and(|t| now < t) || self.recent.len() >= global {
                continue;
            }
            let (text, taken) = compose(q);
            let buttons = match q.notes.front() {
                Some(n) if taken == 1 => n.buttons.clone(),
                _ => Vec::new(),
            };
            q.next_at = Some(now + spacing);
            self.recent.push_back(now);
            match send(chat, &text, &buttons) {
                Ok(()) => {
                    q.notes.drain(..taken);
                    q.dropped = 0;
                    self.stats.sent += 1;
                    if taken > 1 {
                        self.stats.coalesced += taken as u64;
                    }
                    self.failures = 0;
                    self.hold_until = None;
                }
                Err(e) => {
                    self.stats.failures += 1;
                    self.failures = self.failures.saturating_add(1);
                    let wait = match &e {
                        ApiError::RetryAfter(d) => *d,
                        _ => backoff(self.pacing, self.failures),
                    };
                    self.hold_until = Some(now + wait);
                    return Some(e);
                }
            }
        }
        None
    }
}

/// The message for a queue: its notes from the front while they fit, and how many. A single
/// note longer than a message is cut. A note with buttons goes alone: first, or not at all.
fn compose(q: &ChatQueue) -> (String, usize) {
    let mut text = String::new();
    if q.dropped > 0 {
        text.push_str(&format!("({} older notes dropped)", q.dropped));
    }
    let mut taken = 0;
    let mut chars = text.chars().count();
    for note in &q.notes {
        if taken > 0 && !note.buttons.is_empty() {
            break;
        }
        let sep = if text.is_empty() { 0 } else { SEPARATOR.len() };
        let n = note.text.chars().count();
        if taken > 0 && chars + sep + n > MAX_TEXT {
            break;
        }
        if sep > 0 {
            text.push_str(SEPARATOR);
        }
        text.push_str(&note.text);
        chars += sep + n;
        taken += 1;
        if !note.buttons.is_empty() {
            break;
        }
    }
    (clip(&text, MAX_TEXT).to_owned(), taken)
}

/// The back-off after `failures` failures in a row: base · 2^(failures-1), at most the cap.
fn backoff(p: Pacing, failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(16);
    p.backoff_base
        .saturating_mul(1u32 << shift)
        .min(p.backoff_cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACING: Pacing = Pacing {
        per_chat: 1,
        global: 30,
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(8),
    };

    #[test]
    fn a_burst_to_one_chat_goes_out_as_two_messages() {
        let t0 = Instant::now();
        let mut out = Outbox::new(PACING);
        let mut sent = Vec::new();
        out.push(7, "alert 0".into());
        out.flush(t0, |c, t, _| {
            sent.push((c, t.to_owned()));
            Ok(())
        });
        for i in 1..20 {
            out.push(7, format!("alert {i}"));
            out.flush(t0 + Duration::from_millis(10 * i), |c, t, _| {
                sent.push((c, t.to_owned()));
                Ok(())
            });
        }
        assert_eq!(sent.len(), 1, "one message a second per chat");
        out.flush(t0 + Duration::from_secs(1), |c, t, _| {
            sent.push((c, t.to_owned()));
            Ok(())
        });
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1].1.matches("alert ").count(), 19);
        assert_eq!(out.pending(), 0);
        assert_eq!(out.stats().coalesced, 19);
    }

    #[test]
    fn a_note_with_buttons_goes_alone_with_them() {
        let t0 = Instant::now();
        let mut out = Outbox::new(PACING);
        out.push(7, "before".into());
        let ok = Button {
            label: "Confirm".into(),
            data: "ok:1".into(),
        };
        out.push_with_buttons(7, "Buy?".into(), vec![ok.clone()]);
        out.push(7, "after".into());
        let mut sent = Vec::new();
        for s in 0..3 {
            out.flush(t0 + Duration::from_secs(s), |_, t, b| {
                sent.push((t.to_owned(), b.to_vec()));
                Ok(())
            });
        }
        assert_eq!(
            sent,
            [
                ("before".to_owned(), Vec::new()),
                ("Buy?".to_owned(), vec![ok]),
                ("after".to_owned(), Vec::new()),
            ]
        );
    }

    #[test]
    fn the_global_rate_holds_across_chats() {
        let t0 = Instant::now();
        let pacing = Pacing {
            global: 3,
            ..PACING
        };
        let mut out = Outbox::new(pacing);
        for chat in 0..5 {
            out.push(chat, format!("to {chat}"));
        }
        let mut sent = Vec::new();
        out.flush(t0, |c, _, _| {
            sent.push(c);
            Ok(())
        });
        assert_eq!(sent, [0, 1, 2], "three a second overall");
        out.flush(t0 + Duration::from_millis(999), |c, _, _| {
            sent.push(c);
            Ok(())
        });
        assert_eq!(sent.len(), 3);
        out.flush(t0 + Duration::from_secs(1), |c, _, _| {
            sent.push(c);
            Ok(())
        });
        assert_eq!(sent, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_failure_keeps_the_notes_and_backs_off() {
        let t0 = Instant::now();
        let mut out = Outbox::new(PACING);
        out.push(1, "a".into());
        out.push(1, "b".into());
        let e = out.flush(t0, |_, _, _| Err(ApiError::Transport("refused".into())));
        assert!(e.is_some());
        assert_eq!(out.pending(), 2);
        assert_eq!(out.held_until(), Some(t0 + Duration::from_millis(500)));
        // Held: nothing is tried before the back-off ends.
        let mut tried = 0;
        out.flush(t0 + Duration::from_millis(400), |_, _, _| {
            tried += 1;
            Ok(())
        });
        assert_eq!(tried, 0);
        out.push(1, "c".into());
        let mut got = String::new();
        out.flush(t0 + Duration::from_secs(2), |_, t, _| {
            got = t.to_owned();
            Ok(())
        });
        assert_eq!(got, "a\n\nb\n\nc");
        assert_eq!(backoff(PACING, 10), Duration::from_secs(8));
    }

    #[test]
    fn messages_stay_under_the_api_limit_and_full_queues_say_what_they_dropped() {
        let t0 = Instant::now();
        let mut out = Outbox::new(PACING);
        for _ in 0..MAX_NOTES + 3 {
            out.push(2, "x".repeat(1000));
        }
        assert_eq!(out.stats().dropped, 3);
        let mut texts = Vec::new();
        for s in 0..200 {
            out.flush(t0 + Duration::from_secs(s), |_, t, _| {
                texts.push(t.to_owned());
                Ok(())
            });
        }
        assert!(texts[0].starts_with("(3 older notes dropped)"));
        assert!(texts.iter().all(|t| t.chars().count() <= MAX_TEXT));
        assert_eq!(out.pending(), 0);
    }
}
