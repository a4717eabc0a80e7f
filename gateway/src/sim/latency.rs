//! Latency models of the simulated venue: how long a request takes to reach it, and a report to
//! come back, in event time.
//!
//! A [`LatencyModel`] is a constant, a draw from a uniform or lognormal distribution, or a draw
//! from a recorded latency distribution ([`LatencyTable`], read from an HdrHistogram `.hgrm`
//! percentile file such as the engine's own report writes). Draws come from a seeded
//! [`SplitMix64`], so a backtest repeats exactly.
//!
//! **Order on the wire.** Requests and reports each travel one ordered connection, as over one
//! TCP stream: a message never overtakes the one sent before it. A [`SimLink`] therefore delivers
//! at `max(previous delivery, sent + draw)`: a cancel sent right after its order can be delayed
//! by the order's slow draw, but never arrives before it.
//!
//! **Determinism.** Constant, uniform and histogram draws are integer arithmetic. The lognormal
//! draw uses `ln`, `cos` and `exp` of `f64`, which give the same bits on every run of one build
//! on one platform (the promise a backtest needs); another libm may differ in the last bit of a
//! rare draw.

use super::rng::SplitMix64;

/// Most percentile rows a [`LatencyTable`] holds. The engine's report (5 ticks per half
/// distance) writes about 5 rows per doubling of the sample count, ~150 for a billion samples.
pub const MAX_HGRM_ROWS: usize = 256;

/// The scale of a [`LatencyTable`] percentile: fractions of 1 in units of 10⁻¹², the twelve
/// decimals the `.hgrm` layout prints, so a row's percentile is held exactly.
pub const PERCENTILE_ONE: u64 = 1_000_000_000_000;

/// `Φ⁻¹(0.99)`: the standard normal's 99th percentile, which turns a median and a p99 into the
/// lognormal's `σ`.
const Z_P99: f64 = 2.326_347_874_040_841;

/// How a latency is chosen. Times are ns.
// The histogram variant is large (a fixed table) and the others small; it is kept inline so the
// model stays `Copy` and the venue holds no pointer. Models are built once at start.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyModel {
    /// Always the same.
    Constant {
        /// The latency, ns.
        ns: u64,
    },
    /// Uniform over `min_ns..=max_ns`.
    Uniform {
        /// Smallest latency, ns.
        min_ns: u64,
        /// Largest latency, ns (at least `min_ns`).
        max_ns: u64,
    },
    /// Lognormal with the given median and 99th percentile: `ln` of the latency is normal with
    /// `μ = ln(median)` and `σ = ln(p99 / median) / Φ⁻¹(0.99)`. The right-skewed shape of
    /// network and matching-engine delays: most near the median, a long tail.
    LogNormal {
        /// The median, ns (above 0).
        median_ns: u64,
        /// The 99th percentile, ns (above the median).
        p99_ns: u64,
    },
    /// Drawn from a recorded distribution by inverse CDF over its percentile rows.
    Histogram(LatencyTable),
}

impl LatencyModel {
    /// A constant latency.
    pub const fn constant(ns: u64) -> Self {
        Self::Constant { ns }
    }
}

/// One percentile row: `quantile` of the recorded latencies were at most `value_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HgrmRow {
    /// The fraction, in units of 1/[`PERCENTILE_ONE`].
    pub quantile: u64,
    /// The latency, ns.
    pub value_ns: u64,
}

/// A recorded latency distribution: its percentile rows, percentiles and values both
/// non-decreasing, in a fixed table (nothing allocated after start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyTable {
    rows: [HgrmRow; MAX_HGRM_ROWS],
    len: usize,
}

/// Why a `.hgrm` text is not a usable latency distribution. Lines count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HgrmError {
    /// No percentile rows at all.
    #[error("no percentile rows (expected lines of `value percentile total-count …`)")]
    Empty,
    /// More rows than [`MAX_HGRM_ROWS`].
    #[error("more than {max} percentile rows")]
    TooManyRows {
        /// The limit.
        max: usize,
    },
    /// A row whose fields do not parse.
    #[error("line {line}: {what} in {text:?}")]
    Malformed {
        /// Line number.
        line: usize,
        /// What is wrong.
        what: &'static str,
        /// The line.
        text: String,
    },
    /// A row whose percentile or value is below the row before it.
    #[error("line {line}: percentile or value goes down from the row before")]
    NotSorted {
        /// Line number.
        line: usize,
    },
}

impl LatencyTable {
    /// Reads the percentile rows of a `.hgrm` text: `value percentile total-count [1/(1-p)]`, the
    /// value in µs (as the engine's `report.hgrm_dir` files and HdrHistogram's
    /// `outputPercentileDistribution` with a 1000 ns→µs scale write it), the percentile a
    /// fraction. The header line (starting `Value`), blank lines and `#` lines are skipped.
    pub fn parse_hgrm(text: &str) -> Result<Self, HgrmError> {
        let mut table = Self {
            rows: [HgrmRow::default(); MAX_HGRM_ROWS],
            len: 0,
        };
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with("Value") {
                continue;
            }
            let bad = |what| HgrmError::Malformed {
                line,
                what,
                text: l.to_owned(),
            };
            let mut fields = l.split_whitespace();
            let value_ns = fields
                .next()
                .and_then(|v| decimal_scaled(v, 3))
                .ok_or_else(|| bad("the value is not a number of µs"))?;
            let quantile = fields
                .next()
                .and_then(|q| decimal_scaled(q, 12))
                .filter(|&q| q <= PERCENTILE_ONE)
                .ok_or_else(|| bad("the percentile is not a fraction between 0 and 1"))?;
            fields
                .next()
                .and_then(|c| c.parse::<u64>().ok())
                .ok_or_else(|| bad("the total count is not a whole number"))?;
            let row = HgrmRow { quantile, value_ns };
            if let Some(prev) = table.rows().last()
                && (row.quantile < prev.quantile || row.value_ns < prev.value_ns)
            {
                return Err(HgrmError::NotSorted { line });
            }
            if table.len == MAX_HGRM_ROWS {
                return Err(HgrmError::TooManyRows { max: MAX_HGRM_ROWS });
            }
            table.rows[table.len] = row;
            table.len += 1;
        }
        if table.len == 0 {
            return Err(HgrmError::Empty);
        }
        Ok(table)
    }

    /// The rows, lowest percentile first.
    pub fn rows(&self) -> &[HgrmRow] {
        &self.rows[..self.len]
    }

    /// The latency at fraction `u` (units of 1/[`PERCENTILE_ONE`]), ns: linear between the rows
    /// around it, the first row's value below the first row, the last row's above the last.
    pub fn value_at(&self, u: u64) -> u64 {
        let rows = self.rows();
        let i = rows.partition_point(|r| r.quantile < u);
        let (Some(lo), Some(hi)) = (i.checked_sub(1).and_then(|j| rows.get(j)), rows.get(i)) else {
            return rows.get(i).or(rows.last()).map_or(0, |r| r.value_ns);
        };
        // lo.quantile < u <= hi.quantile, so the span is not zero.
        let span = u128::from(hi.quantile - lo.quantile);
        let rise = u128::from(hi.value_ns - lo.value_ns) * u128::from(u - lo.quantile);
        lo.value_ns + (rise / span) as u64
    }
}

/// `text` as a decimal number times `10^scale`, digits beyond `scale` decimals dropped; `None`
/// if it is not a plain non-negative decimal or does not fit.
fn decimal_scaled(text: &str, scale: u32) -> Option<u64> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n = int.parse::<u64>().ok()?.checked_mul(10u64.pow(scale))?;
    let mut unit = 10u64.pow(scale);
    for b in frac.bytes().take(scale as usize) {
        unit /= 10;
        n = n.checked_add(u64::from(b - b'0') * unit)?;
    }
    Some(n)
}

/// One direction of the connection to the venue: draws each message's latency and keeps the
/// messages in the order they were sent.
#[derive(Debug, Clone, Copy)]
pub struct SimLink {
    model: LatencyModel,
    /// `μ` and `σ` of a lognormal model, worked out once.
    mu: f64,
    sigma: f64,
    rng: SplitMix64,
    /// The latest delivery so far, ns.
    last_ns: u64,
}

impl SimLink {
    /// A link drawing from `model` with `rng`.
    pub fn new(model: LatencyModel, rng: SplitMix64) -> Self {
        let (mu, sigma) = match model {
            LatencyModel::LogNormal { median_ns, p99_ns } => {
                let median = (median_ns.max(1)) as f64;
                let p99 = (p99_ns.max(median_ns).max(1)) as f64;
                (median.ln(), (p99 / median).ln() / Z_P99)
            }
            _ => (0.0, 0.0),
        };
        Self {
            model,
            mu,
            sigma,
            rng,
            last_ns: 0,
        }
    }

    /// One latency drawn from the model, ns.
    pub fn draw(&mut self) -> u64 {
        match self.model {
            LatencyModel::Constant { ns } => ns,
            LatencyModel::Uniform { min_ns, max_ns } => {
                let (lo, hi) = (min_ns.min(max_ns), min_ns.max(max_ns));
                match (hi - lo).checked_add(1) {
                    Some(n) => lo + self.rng.below(n),
                    None => self.rng.next_u64(),
                }
            }
            LatencyModel::LogNormal { .. } => {
                // Box–Muller: one standard normal from two uniforms on (0, 1).
                let (u1, u2) = (self.rng.next_open01(), self.rng.next_open01());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                // `as` saturates: a huge draw becomes u64::MAX, never wraps.
                (self.mu + self.sigma * z).exp().round() as u64
            }
            LatencyModel::Histogram(ref table) => {
                table.value_at(1 + self.rng.below(PERCENTILE_ONE))
            }
        }
    }

    /// When a message sent at `sent_ns` is delivered: after its drawn latency, and not before
    /// the message sent ahead of it.
    pub fn deliver(&mut self, sent_ns: u64) -> u64 {
        let at = sent_ns.saturating_add(self.draw()).max(self.last_ns);
        self.last_ns = at;
        at
    }
}
