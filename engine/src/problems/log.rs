//! [`ProblemLog`]: one stage's count table and sample slots, and its end of the
//! `--errors-out` ring. See the [module docs](super).

use arrayvec::ArrayVec;
use pinion_core::{ConnId, InstrumentId};

use super::errors_out::ErrorsOutTx;
use super::{Problem, ProblemClass, ProblemKind, SAMPLES_PER_KIND, Subject};

/// Connections counted apart when a problem's instrument is unknown; those numbered higher share
/// the last slot (reported as that connection).
const CONN_SLOTS: usize = 256;

/// Counts and samples of one stage's problems. See the [module docs](super).
#[derive(Debug)]
pub struct ProblemLog {
    /// Instruments in the registry: the first slots of each kind's row.
    instruments: usize,
    /// Per kind, a row of `instruments + CONN_SLOTS + 1` counts (the last: the input).
    counts: Box<[u64]>,
    /// Per kind, the row's sum: a clean run's summary never reads the (large) table.
    kind_totals: [u64; ProblemKind::COUNT],
    /// Per kind, the first problems whole.
    samples: Box<[ArrayVec<Problem, SAMPLES_PER_KIND>]>,
    /// Where every problem goes for the `--errors-out` file, if one was asked for.
    out: Option<ErrorsOutTx>,
    /// Problems that found the ring full, so are missing from the file.
    lost: u64,
}

/// How many problems of one kind one subject had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemCount {
    /// The kind.
    pub kind: ProblemKind,
    /// What they were about.
    pub subject: Subject,
    /// How many.
    pub count: u64,
}

/// What a [`ProblemLog`] (or several, merged) holds at the end of a run.
#[derive(Debug, Clone, Default)]
pub struct ProblemSummary {
    /// Non-zero counts, by kind then subject.
    pub counts: Vec<ProblemCount>,
    /// The first problems of each kind, in the order they happened (per stage).
    pub samples: Vec<Problem>,
    /// Problems missing from the `--errors-out` file because its ring was full.
    pub lost_to_file: u64,
}

impl ProblemLog {
    /// A log for a registry of `instruments`, sending every problem to `out` too when given.
    /// Allocates everything it will use.
    pub fn new(instruments: usize, out: Option<ErrorsOutTx>) -> Self {
        let row = instruments + CONN_SLOTS + 1;
        Self {
            instruments,
            counts: vec![0; row * ProblemKind::COUNT].into_boxed_slice(),
            kind_totals: [0; ProblemKind::COUNT],
            samples: (0..ProblemKind::COUNT).map(|_| ArrayVec::new()).collect(),
            out,
            lost: 0,
        }
    }

    fn row(&self) -> usize {
        self.instruments + CONN_SLOTS + 1
    }

    fn slot(&self, subject: Subject) -> usize {
        match subject {
            Subject::Instrument(id) if usize::from(id.0) < self.instruments => usize::from(id.0),
            Subject::Connection(c) => self.instruments + usize::from(c.0).min(CONN_SLOTS - 1),
            Subject::Instrument(_) | Subject::Input => self.instruments + CONN_SLOTS,
        }
    }

    fn subject_of(&self, slot: usize) -> Subject {
        if slot < self.instruments {
            Subject::Instrument(InstrumentId(slot as u16))
        } else if slot < self.instruments + CONN_SLOTS {
            Subject::Connection(ConnId((slot - self.instruments) as u16))
        } else {
            Subject::Input
        }
    }

    /// Counts `problem`, keeps it if it is among the first of its kind, and sends it to the
    /// `--errors-out` writer. No allocation, no I/O.
    pub fn record(&mut self, problem: Problem) {
        let i = problem.kind.index() * self.row() + self.slot(problem.subject);
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.kind_totals[problem.kind.index()] += 1;
        let kept = &mut self.samples[problem.kind.index()];
        if !kept.is_full() {
            kept.push(problem.clone());
        }
        if let Some(out) = &mut self.out
            && out.push(problem).is_err()
        {
            self.lost += 1;
        }
    }

    /// Problems of `class` so far.
    pub fn total(&self, class: ProblemClass) -> u64 {
        ProblemKind::ALL
            .iter()
            .filter(|k| k.class() == class)
            .map(|k| self.kind_totals[k.index()])
            .sum()
    }

    /// Lets go of the `--errors-out` ring, so the writer can finish once it has drained it.
    pub fn close(&mut self) {
        self.out = None;
    }

    /// The counts and samples, for the report.
    pub fn summary(&self) -> ProblemSummary {
        let row = self.row();
        let counts = ProblemKind::ALL
            .iter()
            .filter(|k| self.kind_totals[k.index()] > 0)
            .flat_map(|&kind| {
                let start = kind.index() * row;
                self.counts[start..start + row]
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(move |(slot, &count)| (kind, slot, count))
            })
            .map(|(kind, slot, count)| ProblemCount {
                kind,
                subject: self.subject_of(slot),
                count,
            })
            .collect();
        ProblemSummary {
            counts,
            samples: self.samples.iter().flatten().cloned().collect(),
            lost_to_file: self.lost,
        }
    }
}

impl ProblemSummary {
    /// Several stages' summaries as one.
    pub fn merge(parts: impl IntoIterator<Item = ProblemSummary>) -> Self {
        let mut all = Self::default();
        for p in parts {
            all.counts.extend(p.counts);
            all.samples.extend(p.samples);
            all.lost_to_file += p.lost_to_file;
        }
        all.counts.sort_by_key(|c| (c.kind, c.subject));
        all.samples.sort_by_key(|s| s.kind);
        all
    }

    /// Problems of `kind`.
    pub fn of_kind(&self, kind: ProblemKind) -> u64 {
        self.counts
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.count)
            .sum()
    }

    /// Problems of `class`.
    pub fn of_class(&self, class: ProblemClass) -> u64 {
        self.counts
            .iter()
            .filter(|c| c.kind.class() == class)
            .map(|c| c.count)
            .sum()
    }

    /// Problems of `class` about `subject`.
    pub fn of_subject(&self, class: ProblemClass, subject: Subject) -> u64 {
        self.counts
            .iter()
            .filter(|c| c.kind.class() == class && c.subject == subject)
            .map(|c| c.count)
            .sum()
    }

    /// Every problem counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind_and_subject_and_keeps_the_first_few() {
        let mut log = ProblemLog::new(2, None);
        let btc = Subject::Instrument(InstrumentId(1));
        for i in 0..7 {
            let mut p = Problem::new(ProblemKind::BadNumber, btc);
            p.record = Some(i);
            log.record(p);
        }
        log.record(Problem::new(
            ProblemKind::Json,
            Subject::Connection(ConnId(3)),
        ));
        log.record(Problem::new(
            ProblemKind::Json,
            Subject::Connection(ConnId(900)),
        ));
        log.record(Problem::new(ProblemKind::SourceFormat, Subject::Input));
        assert_eq!(log.total(ProblemClass::Decode), 9);
        assert_eq!(log.total(ProblemClass::Source), 1);
        let s = log.summary();
        assert_eq!(s.of_subject(ProblemClass::Decode, btc), 7);
        assert_eq!(
            s.of_subject(ProblemClass::Decode, Subject::Connection(ConnId(3))),
            1
        );
        // Connections past the table share its last slot.
        assert_eq!(
            s.of_subject(
                ProblemClass::Decode,
                Subject::Connection(ConnId((CONN_SLOTS - 1) as u16))
            ),
            1
        );
        let kept: Vec<Option<u64>> = s
            .samples
            .iter()
            .filter(|p| p.kind == ProblemKind::BadNumber)
            .map(|p| p.record)
            .collect();
        assert_eq!(kept, [Some(0), Some(1), Some(2), Some(3), Some(4)]);
        assert_eq!(s.total(), 10);
    }

    #[test]
    fn a_full_ring_loses_problems_from_the_file_only_and_counts_them() {
        let (tx, mut rx) = rtrb::RingBuffer::new(2);
        let mut log = ProblemLog::new(1, Some(tx));
        for _ in 0..5 {
            log.record(Problem::new(ProblemKind::Gap, Subject::Input));
        }
        let s = log.summary();
        assert_eq!((s.total(), s.lost_to_file), (5, 3));
        assert_eq!(rx.slots(), 2);
        log.close();
        assert!(rx.is_abandoned());
        assert!(rx.pop().is_ok());
    }
}
