//! [`BacktestReport`]: the figures of every traded instrument and of all of them together, as
//! the `trading` object of `report.json` and as a table. Money is exact (decimal strings in the
//! quote asset); ratios are floats. Nothing here depends on the host or the wall clock, so two
//! runs of one recording and config give equal `trading` objects.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::figures::{self, Drawdown, EquityPoint, Wins};
use crate::config::BacktestSpec;
use crate::pipeline::{PipelineReport, scaled_decimal};
use crate::stages::strategy::TradingFinal;
use pinion_strategy::ReasonCode;

/// The figures of one instrument, or of the total.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Decimals of the money amounts below.
    pub money_decimals: u8,
    /// Realised PnL before fees.
    pub realized: i128,
    /// Unrealised PnL at the last mid.
    pub unrealized: i128,
    /// Fees paid.
    pub fees: i128,
    /// Notional traded.
    pub volume: i128,
    /// Orders sent (those the risk gate passed).
    pub orders: u64,
    /// Cancels sent.
    pub cancels: u64,
    /// Fills.
    pub fills: u64,
    /// Fills as maker.
    pub maker_fills: u64,
    /// Net PnL over the capital.
    pub return_: f64,
    /// Annualised Sharpe of the per-period returns.
    pub sharpe: Option<f64>,
    /// Annualised Sortino.
    pub sortino: Option<f64>,
    /// Periods the returns were taken over.
    pub periods: u64,
    /// The largest drawdown of equity.
    pub drawdown: Drawdown,
    /// The closing fills.
    pub wins: Wins,
}

impl Figures {
    /// Gross PnL: realised and unrealised.
    pub fn gross(&self) -> i128 {
        self.realized + self.unrealized
    }

    /// Net PnL: gross less fees.
    pub fn net(&self) -> i128 {
        self.gross() - self.fees
    }

    fn money(&self, v: i128) -> String {
        scaled_decimal(v, self.money_decimals)
    }

    fn ratio(num: u64, den: u64) -> Option<f64> {
        (den > 0).then(|| num as f64 / den as f64)
    }

    /// Maker fills over fills.
    pub fn maker_share(&self) -> Option<f64> {
        Self::ratio(self.maker_fills, self.fills)
    }

    /// Cancels over orders.
    pub fn cancel_ratio(&self) -> Option<f64> {
        Self::ratio(self.cancels, self.orders)
    }

    fn measure(&mut self, series: &[EquityPoint], period_ns: u64, capital_units: f64) -> &mut Self {
        let returns = figures::period_returns(series, period_ns, capital_units);
        (self.sharpe, self.sortino) = returns.sharpe_sortino(period_ns);
        self.periods = returns.n;
        self.drawdown = figures::drawdown(series);
        self.return_ = self.net() as f64 / capital_units;
        self
    }

    fn to_json(&self, capital_units: f64) -> Value {
        let dd = &self.drawdown;
        json!({
            "realized_pnl": self.money(self.realized),
            "unrealized_pnl": self.money(self.unrealized),
            "gross_pnl": self.money(self.gross()),
            "fees": self.money(self.fees),
            "net_pnl": self.money(self.net()),
            "volume": self.money(self.volume),
            "return": self.return_,
            "sharpe": self.sharpe,
            "sortino": self.sortino,
            "periods": self.periods,
            "max_drawdown": self.money(dd.max),
            "max_drawdown_fraction": dd.max as f64 / (capital_units + dd.peak as f64),
            "max_drawdown_duration_ns": dd.duration_ns,
            "orders": self.orders,
            "cancels": self.cancels,
            "cancel_to_order": self.cancel_ratio(),
            "fills": self.fills,
            "maker_fills": self.maker_fills,
            "taker_fills": self.fills - self.maker_fills,
            "maker_share": self.maker_share(),
            "closing_fills": self.wins.closing,
            "win_rate": self.wins.rate(),
            "profit_factor": self.wins.profit_factor(),
        })
    }
}

/// What one reason code did: the intents sent for it, the fills of its orders and their
/// realised PnL and fees. Realised PnL is the change each fill made to the account's realised
/// PnL, so the rows of an instrument add up to its realised PnL and fees (of the recorded
/// fills); unrealised PnL belongs to the open position, not to a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonFigures {
    /// The reason code.
    pub code: ReasonCode,
    /// New orders (and replaces) sent.
    pub orders: u64,
    /// Cancels (and amends) sent.
    pub cancels: u64,
    /// Fills of its orders.
    pub fills: u64,
    /// Realised PnL of those fills, before fees.
    pub realized: i128,
    /// Their fees.
    pub fees: i128,
}

impl ReasonFigures {
    fn empty(code: ReasonCode) -> Self {
        Self {
            code,
            orders: 0,
            cancels: 0,
            fills: 0,
            realized: 0,
            fees: 0,
        }
    }

    /// Realised PnL less fees.
    pub fn net_realized(&self) -> i128 {
        self.realized - self.fees
    }

    fn is_empty(&self) -> bool {
        self.orders == 0 && self.cancels == 0 && self.fills == 0
    }
}

/// The by-reason rows of one instrument: intents from the gate's counts, fills and realised
/// PnL from the tape, one row per code (index `code as usize`).
fn by_reason(t: &TradingFinal) -> Vec<ReasonFigures> {
    let mut rows: Vec<ReasonFigures> = ReasonCode::ALL.map(ReasonFigures::empty).to_vec();
    for (row, [orders, cancels]) in rows.iter_mut().zip(t.gate.sent_by_code) {
        row.orders = orders;
        row.cancels = cancels;
    }
    let mut realized = 0i128;
    for f in t.tape.fills() {
        let row = &mut rows[f.reason.code as usize];
        row.fills += 1;
        row.realized += f.realized - realized;
        row.fees += f.fee;
        realized = f.realized;
    }
    rows
}

fn reasons_json(rows: &[ReasonFigures], money_decimals: u8) -> Value {
    let money = |v| scaled_decimal(v, money_decimals);
    rows.iter()
        .filter(|r| !r.is_empty())
        .map(|r| {
            json!({
                "reason": r.code.name(),
                "orders": r.orders,
                "cancels": r.cancels,
                "fills": r.fills,
                "realized_pnl": money(r.realized),
                "fees": money(r.fees),
                "net_realized_pnl": money(r.net_realized()),
            })
        })
        .collect()
}

/// One traded instrument's result.
#[derive(Debug, Clone)]
pub struct InstrumentResult {
    /// `venue symbol`.
    pub name: String,
    /// The venue's config name.
    pub venue: String,
    /// The symbol.
    pub symbol: String,
    /// Decimals of its prices.
    pub price_decimals: u8,
    /// Decimals of its quantities.
    pub qty_decimals: u8,
    /// What the strategy stage handed over.
    pub trading: TradingFinal,
    /// Its figures.
    pub figures: Figures,
    /// Its figures by reason code, one row per code (index `code as usize`).
    pub by_reason: Vec<ReasonFigures>,
}

/// The backtest's report. See the module docs.
#[derive(Debug, Clone)]
pub struct BacktestReport {
    /// Each traded instrument.
    pub instruments: Vec<InstrumentResult>,
    /// All of them together (money in the finest of their units).
    pub total: Figures,
    /// All of them together by reason code (money in the total's units).
    pub total_by_reason: Vec<ReasonFigures>,
    /// The total equity series (money in the total's units).
    pub total_equity: Vec<EquityPoint>,
    /// The sampling and return period, ns.
    pub period_ns: u64,
    /// Capital, in the quote asset.
    pub capital: f64,
}

fn pow10(d: u8) -> i128 {
    10i128.pow(u32::from(d))
}

impl BacktestReport {
    /// The figures of `report`'s trading, measured as `spec` says.
    pub fn new(report: &PipelineReport, spec: &BacktestSpec) -> Self {
        let mut instruments = Vec::new();
        for t in &report.trading {
            let spec_i = report.input.instruments.get(t.instrument);
            let (name, venue, symbol, pd, qd, md) = match spec_i {
                Some(s) => (
                    format!("{} {}", s.venue, s.symbol),
                    s.venue.name().to_owned(),
                    s.symbol.to_string(),
                    s.price_decimals,
                    s.qty_decimals,
                    s.money_decimals(),
                ),
                None => (
                    format!("#{}", t.instrument.0),
                    String::new(),
                    String::new(),
                    0,
                    0,
                    0,
                ),
            };
            let mut f = Figures {
                money_decimals: md,
                realized: t.realized,
                unrealized: t.unrealized.unwrap_or(0),
                fees: t.fees,
                volume: t.volume,
                orders: t.stats.orders.saturating_sub(t.stats.risk_rejects),
                cancels: t.stats.cancels,
                fills: t.stats.fills,
                maker_fills: t.maker_fills,
                return_: 0.0,
                sharpe: None,
                sortino: None,
                periods: 0,
                drawdown: Drawdown::default(),
                wins: figures::wins(t.tape.fills()),
            };
            let series = figures::equity_series(t.tape.samples());
            f.measure(&series, spec.period_ns, spec.capital * pow10(md) as f64);
            instruments.push(InstrumentResult {
                name,
                venue,
                symbol,
                price_decimals: pd,
                qty_decimals: qd,
                by_reason: by_reason(t),
                trading: t.clone(),
                figures: f,
            });
        }
        let md = instruments
            .iter()
            .map(|i| i.figures.money_decimals)
            .max()
            .unwrap_or(0);
        let mut total = Figures {
            money_decimals: md,
            realized: 0,
            unrealized: 0,
            fees: 0,
            volume: 0,
            orders: 0,
            cancels: 0,
            fills: 0,
            maker_fills: 0,
            return_: 0.0,
            sharpe: None,
            sortino: None,
            periods: 0,
            drawdown: Drawdown::default(),
            wins: Wins::default(),
        };
        let mut series = Vec::new();
        let mut total_by_reason: Vec<ReasonFigures> =
            ReasonCode::ALL.map(ReasonFigures::empty).to_vec();
        for i in &instruments {
            let f = &i.figures;
            let k = pow10(md - f.money_decimals);
            for (t, r) in total_by_reason.iter_mut().zip(&i.by_reason) {
                t.orders += r.orders;
                t.cancels += r.cancels;
                t.fills += r.fills;
                t.realized += r.realized * k;
                t.fees += r.fees * k;
            }
            total.realized += f.realized * k;
            total.unrealized += f.unrealized * k;
            total.fees += f.fees * k;
            total.volume += f.volume * k;
            total.orders += f.orders;
            total.cancels += f.cancels;
            total.fills += f.fills;
            total.maker_fills += f.maker_fills;
            total.wins.closing += f.wins.closing;
            total.wins.wins += f.wins.wins;
            total.wins.won += f.wins.won * k;
            total.wins.lost += f.wins.lost * k;
            series.push((figures::equity_series(i.trading.tape.samples()), k));
        }
        let total_equity = figures::total_series(&series);
        total.measure(
            &total_equity,
            spec.period_ns,
            spec.capital * pow10(md) as f64,
        );
        Self {
            instruments,
            total,
            total_by_reason,
            total_equity,
            period_ns: spec.period_ns,
            capital: spec.capital,
        }
    }

    /// The `trading` object of `report.json`: per instrument and in total.
    pub fn trading_json(&self) -> Value {
        let instruments: Vec<Value> = self
            .instruments
            .iter()
            .map(|i| {
                let t = &i.trading;
                let mut v = i
                    .figures
                    .to_json(self.capital * pow10(i.figures.money_decimals) as f64);
                if let Value::Object(map) = &mut v {
                    let extra = json!({
                        "venue": i.venue,
                        "symbol": i.symbol,
                        "strategy": t.strategy,
                        "position": scaled_decimal(i128::from(t.position.0), i.qty_decimals),
                        "mark": t.mark.map(|m| scaled_decimal(i128::from(m.0), i.price_decimals)),
                        "maker_fee_bps": t.fee_rates.maker_e8 as f64 / 10_000.0,
                        "taker_fee_bps": t.fee_rates.taker_e8 as f64 / 10_000.0,
                        "risk_refused": t.gate.refused,
                        "throttled": t.stats.throttled,
                        "venue_rejects": t.stats.venue_rejects,
                        "fills_recorded": t.tape.fills().len(),
                        "fills_not_recorded": t.tape.fills_dropped(),
                        "samples": t.tape.samples().len(),
                        "samples_not_recorded": t.tape.samples_dropped(),
                        "by_reason": reasons_json(&i.by_reason, i.figures.money_decimals),
                        "by_strategy": crate::pipeline::by_strategy_json(
                            t,
                            (i.qty_decimals, i.figures.money_decimals),
                        ),
                    });
                    if let Value::Object(extra) = extra {
                        map.extend(extra);
                    }
                }
                v
            })
            .collect();
        json!({
            "period_ms": self.period_ns as f64 / 1e6,
            "capital": self.capital,
            "instruments": instruments,
            "total": self.total.to_json(self.capital * pow10(self.total.money_decimals) as f64),
            "total_by_reason": reasons_json(&self.total_by_reason, self.total.money_decimals),
        })
    }

    /// The figures as a table, one column per instrument and one for the total.
    pub fn table(&self) -> String {
        let mut cols: Vec<(&str, &Figures)> = self
            .instruments
            .iter()
            .map(|i| (i.name.as_str(), &i.figures))
            .collect();
        if self.instruments.len() != 1 {
            cols.push(("total", &self.total));
        }
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
        };
        let pct =
            |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |x| format!("{:.2} %", x * 100.0));
        type Cell<'a> = Box<dyn Fn(&Figures) -> String + 'a>;
        let rows: Vec<(&str, Cell<'_>)> = vec![
            ("gross PnL", Box::new(|f: &Figures| f.money(f.gross()))),
            ("fees", Box::new(|f: &Figures| f.money(f.fees))),
            ("net PnL", Box::new(|f: &Figures| f.money(f.net()))),
            ("  realised", Box::new(|f: &Figures| f.money(f.realized))),
            (
                "  unrealised",
                Box::new(|f: &Figures| f.money(f.unrealized)),
            ),
            ("return", Box::new(move |f: &Figures| pct(Some(f.return_)))),
            (
                "sharpe (annualised)",
                Box::new(move |f: &Figures| opt(f.sharpe, 2)),
            ),
            (
                "sortino (annualised)",
                Box::new(move |f: &Figures| opt(f.sortino, 2)),
            ),
            (
                "max drawdown",
                Box::new(|f: &Figures| f.money(f.drawdown.max)),
            ),
            (
                "  duration",
                Box::new(|f: &Figures| format!("{:.3} s", f.drawdown.duration_ns as f64 / 1e9)),
            ),
            ("win rate", Box::new(move |f: &Figures| pct(f.wins.rate()))),
            (
                "profit factor",
                Box::new(move |f: &Figures| opt(f.wins.profit_factor(), 3)),
            ),
            ("fills", Box::new(|f: &Figures| f.fills.to_string())),
            (
                "maker share",
                Box::new(move |f: &Figures| pct(f.maker_share())),
            ),
            ("volume", Box::new(|f: &Figures| f.money(f.volume))),
            ("orders", Box::new(|f: &Figures| f.orders.to_string())),
            ("cancels", Box::new(|f: &Figures| f.cancels.to_string())),
            (
                "cancels / orders",
                Box::new(move |f: &Figures| opt(f.cancel_ratio(), 3)),
            ),
        ];
        let mut s = String::new();
        let _ = writeln!(
            s,
            "backtest (quote asset; period {} ms, capital {}):",
            self.period_ns / 1_000_000,
            self.capital
        );
        let _ = write!(s, "  {:<22}", "");
        for (name, _) in &cols {
            let _ = write!(s, " {name:>24}");
        }
        let _ = writeln!(s);
        for (label, cell) in &rows {
            let _ = write!(s, "  {label:<22}");
            for (_, f) in &cols {
                let _ = write!(s, " {:>24}", cell(f));
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(
            s,
            "  by reason (all instruments)  {:>8} {:>8} {:>8} {:>20} {:>16} {:>20}",
            "orders", "cancels", "fills", "realised", "fees", "net realised"
        );
        let money = |v| scaled_decimal(v, self.total.money_decimals);
        for r in self.total_by_reason.iter().filter(|r| !r.is_empty()) {
            let _ = writeln!(
                s,
                "    {:<26} {:>8} {:>8} {:>8} {:>20} {:>16} {:>20}",
                r.code.name(),
                r.orders,
                r.cancels,
                r.fills,
                money(r.realized),
                money(r.fees),
                money(r.net_realized())
            );
        }
        for i in &self.instruments {
            let t = &i.trading.tape;
            if t.fills_dropped() + t.samples_dropped() > 0 {
                let _ = writeln!(
                    s,
                    "warning: {}: {} fills and {} equity samples not recorded (backtest.max_fills, backtest.max_samples): the figures from them are partial",
                    i.name,
                    t.fills_dropped(),
                    t.samples_dropped()
                );
            }
        }
        s
    }
}
