//! The backtest's plots, as SVG (plotters' SVG backend: text is written as SVG text, so no font
//! files or system libraries are needed): `equity.svg` (the total equity and its drawdown),
//! and per instrument `position-<venue>-<symbol>.svg` and `price-<venue>-<symbol>.svg` (the mid
//! with our buys and sells marked). Time is seconds of event time from the first sample.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::output::BacktestError;
use super::report::{BacktestReport, InstrumentResult};
use pinion_strategy::OrderSide;

const SIZE: (u32, u32) = (1200, 500);

/// Draws every plot into `dir`; returns their paths.
pub fn draw_all(dir: &Path, bt: &BacktestReport) -> Result<Vec<PathBuf>, BacktestError> {
    let t0 = bt.total_equity.first().map_or(0, |p| p.0);
    let mut out = Vec::new();
    let path = dir.join("equity.svg");
    let scale = 10f64.powi(i32::from(bt.total.money_decimals));
    let equity: Vec<(f64, f64)> = bt
        .total_equity
        .iter()
        .map(|&(t, e)| (secs(t, t0), e as f64 / scale))
        .collect();
    equity_plot(&path, &equity).map_err(plot_error(&path))?;
    out.push(path);
    for i in &bt.instruments {
        let tag = format!("{}-{}", i.venue, i.symbol);
        let path = dir.join(format!("position-{tag}.svg"));
        position_plot(&path, i, t0).map_err(plot_error(&path))?;
        out.push(path);
        let path = dir.join(format!("price-{tag}.svg"));
        price_plot(&path, i, t0).map_err(plot_error(&path))?;
        out.push(path);
    }
    Ok(out)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn plot_error(path: &Path) -> impl FnOnce(Box<dyn std::error::Error>) -> BacktestError + '_ {
    move |e| BacktestError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn secs(t: u64, t0: u64) -> f64 {
    t.saturating_sub(t0) as f64 / 1e9
}

/// A range around `values` that is never empty.
fn span(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs().max(1e-9) * 1e-6);
    (lo - pad)..(hi + pad)
}

fn equity_plot(path: &Path, equity: &[(f64, f64)]) -> DrawResult {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(SIZE.1 * 3 / 5);
    let mut peak = 0.0f64;
    let drawdown: Vec<(f64, f64)> = equity
        .iter()
        .map(|&(t, e)| {
            peak = peak.max(e);
            (t, e - peak)
        })
        .collect();
    let x = span(equity.iter().map(|p| p.0));
    let mut c = ChartBuilder::on(&upper)
        .caption("equity (net PnL, quote asset)", ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(70)
        .build_cartesian_2d(x.clone(), span(equity.iter().map(|p| p.1).chain([0.0])))?;
    c.configure_mesh().draw()?;
    c.draw_series(LineSeries::new(equity.iter().copied(), &BLUE))?;
    let mut c = ChartBuilder::on(&lower)
        .caption("drawdown", ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(x, span(drawdown.iter().map(|p| p.1).chain([0.0])))?;
    c.configure_mesh().x_desc("event time, s").draw()?;
    c.draw_series(AreaSeries::new(drawdown.iter().copied(), 0.0, RED.mix(0.3)))?;
    root.present()?;
    Ok(())
}

fn position_plot(path: &Path, i: &InstrumentResult, t0: u64) -> DrawResult {
    let scale = 10f64.powi(i32::from(i.qty_decimals));
    let points: Vec<(f64, f64)> = i
        .trading
        .tape
        .samples()
        .iter()
        .map(|s| (secs(s.t_ns, t0), s.position.0 as f64 / scale))
        .collect();
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(format!("{}: position", i.name), ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(
            span(points.iter().map(|p| p.0)),
            span(points.iter().map(|p| p.1).chain([0.0])),
        )?;
    c.configure_mesh().x_desc("event time, s").draw()?;
    c.draw_series(LineSeries::new(points.iter().copied(), &BLACK))?;
    root.present()?;
    Ok(())
}

fn price_plot(path: &Path, i: &InstrumentResult, t0: u64) -> DrawResult {
    let scale = 10f64.powi(i32::from(i.price_decimals));
    let mid: Vec<(f64, f64)> = i
        .trading
        .tape
        .samples()
        .iter()
        .map(|s| (secs(s.t_ns, t0), s.mid.0 as f64 / scale))
        .collect();
    let fills = i.trading.tape.fills();
    let fill = |side: OrderSide| {
        fills
            .iter()
            .filter(move |f| f.side == side)
            .map(move |f| (secs(f.t_ns, t0), f.px.0 as f64 / scale))
    };
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(
            format!("{}: mid, our buys (green) and sells (red)", i.name),
            ("sans-serif", 18),
        )
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(
            span(mid.iter().map(|p| p.0)),
            span(
                mid.iter()
                    .map(|p| p.1)
                    .chain(fills.iter().map(|f| f.px.0 as f64 / scale)),
            ),
        )?;
    c.configure_mesh().x_desc("event time, s").draw()?;
    c.draw_series(LineSeries::new(mid.iter().copied(), &BLACK))?;
    c.draw_series(fill(OrderSide::Buy).map(|p| TriangleMarker::new(p, 4, GREEN.filled())))?;
    c.draw_series(fill(OrderSide::Sell).map(|p| Cross::new(p, 4, RED.stroke_width(2))))?;
    root.present()?;
    Ok(())
}
