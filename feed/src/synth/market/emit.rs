//! Writing the market's state as Binance Spot frames, and the [`FrameSource`] that releases
//! them in order: `Connect`, the REST snapshot, then one stream frame per call.
//!
//! Every writer clears and refills the market's one frame buffer, which was sized at start-up
//! for the largest frame (the snapshot or a full diff), so writing never allocates.

use super::{CONN, Phase, SNAPSHOT_DELAY_NS, SynthMarket, TradePrint};
use crate::error::SourceError;
use crate::source::FrameSource;
use crate::synth::book::SynthLevel;
use crate::synth::frame::{WireScale, push_level, push_u64};
use pinion_core::event::Side;
use pinion_core::record::{ConnInfo, RawRecord, RecordKind};

impl SynthMarket {
    fn exchange_ms(&self) -> u64 {
        self.t_recv.saturating_sub(self.exchange_latency_ns) / 1_000_000
    }

    fn write_snapshot(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(b"{\"lastUpdateId\":");
        push_u64(&mut self.buf, self.update_id);
        self.buf.extend_from_slice(b",\"bids\":[");
        let (px_wire, qty_wire, tick) = (self.px_wire, self.qty_wire, self.spec.tick.0);
        write_levels(&mut self.buf, px_wire, qty_wire, tick, self.bids.levels());
        self.buf.extend_from_slice(b"],\"asks\":[");
        write_levels(&mut self.buf, px_wire, qty_wire, tick, self.asks.levels());
        self.buf.extend_from_slice(b"]}");
    }

    fn write_diff(&mut self) {
        // Bids best (highest) first, then asks best (lowest) first, as Binance orders them.
        self.pending
            .sort_unstable_by_key(|&(side, tick)| match side {
                Side::Bid => (0u8, -tick),
                Side::Ask => (1u8, tick),
            });
        let ms = self.exchange_ms();
        self.buf.clear();
        self.buf.extend_from_slice(&self.depth_prefix);
        push_u64(&mut self.buf, ms);
        self.buf.extend_from_slice(&self.symbol_field);
        self.buf.extend_from_slice(b",\"U\":");
        push_u64(
            &mut self.buf,
            self.update_id - u64::from(self.pending_updates) + 1,
        );
        self.buf.extend_from_slice(b",\"u\":");
        push_u64(&mut self.buf, self.update_id);
        self.buf.extend_from_slice(b",\"b\":[");
        let n_bids = self.pending.iter().filter(|p| p.0 == Side::Bid).count();
        let (px_wire, qty_wire, tick) = (self.px_wire, self.qty_wire, self.spec.tick.0);
        for (i, &(side, t)) in self.pending.iter().enumerate() {
            if i == n_bids {
                self.buf.extend_from_slice(b"],\"a\":[");
            } else if i > 0 {
                self.buf.push(b',');
            }
            let qty = match side {
                Side::Bid => self.bids.qty_at(t),
                Side::Ask => self.asks.qty_at(t),
            };
            push_level(&mut self.buf, px_wire, qty_wire, t * tick, qty);
        }
        if n_bids == self.pending.len() {
            self.buf.extend_from_slice(b"],\"a\":[");
        }
        self.buf.extend_from_slice(b"]}}");

        self.pending.clear();
        self.pending_updates = 0;
        self.diff_due = false;
        self.diff_target = self.draw_diff_target();
    }

    fn write_ticker(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&self.ticker_prefix);
        push_u64(&mut self.buf, self.update_id);
        self.buf.extend_from_slice(&self.symbol_field);
        let (px_wire, qty_wire, tick) = (self.px_wire, self.qty_wire, self.spec.tick.0);
        // `ticker_due` is only set with both sides present.
        let bid = self.bids.best().unwrap_or(SynthLevel { tick: 0, qty: 0 });
        let ask = self.asks.best().unwrap_or(SynthLevel { tick: 0, qty: 0 });
        self.buf.extend_from_slice(b",\"b\":");
        px_wire.push_quoted(&mut self.buf, bid.tick * tick);
        self.buf.extend_from_slice(b",\"B\":");
        qty_wire.push_quoted(&mut self.buf, bid.qty);
        self.buf.extend_from_slice(b",\"a\":");
        px_wire.push_quoted(&mut self.buf, ask.tick * tick);
        self.buf.extend_from_slice(b",\"A\":");
        qty_wire.push_quoted(&mut self.buf, ask.qty);
        self.buf.extend_from_slice(b"}}");

        self.ticker_due = false;
        self.touch_changed = false;
        self.updates_since_ticker = 0;
    }

    fn write_trade(&mut self, trade: TradePrint) {
        let ms = self.exchange_ms();
        self.buf.clear();
        self.buf.extend_from_slice(&self.trade_prefix);
        push_u64(&mut self.buf, ms);
        self.buf.extend_from_slice(&self.symbol_field);
        self.buf.extend_from_slice(b",\"t\":");
        push_u64(&mut self.buf, self.next_trade_id);
        self.next_trade_id += 1;
        self.buf.extend_from_slice(b",\"p\":");
        self.px_wire
            .push_quoted(&mut self.buf, trade.tick * self.spec.tick.0);
        self.buf.extend_from_slice(b",\"q\":");
        self.qty_wire.push_quoted(&mut self.buf, trade.qty);
        // The match happens just before the event is stamped.
        self.buf.extend_from_slice(b",\"T\":");
        push_u64(&mut self.buf, ms.saturating_sub(1));
        self.buf.extend_from_slice(if trade.buyer_maker {
            b",\"m\":true,\"M\":true}}"
        } else {
            b",\"m\":false,\"M\":true}}"
        });
    }

    /// Runs the market until a message is due and writes it: a trade first, then a completed
    /// diff, then the ticker for the same state.
    fn write_next_frame(&mut self) {
        loop {
            if let Some(trade) = self.trade.take() {
                self.write_trade(trade);
                return;
            }
            if self.diff_due {
                self.write_diff();
                return;
            }
            if self.ticker_due {
                self.write_ticker();
                return;
            }
            self.step();
        }
    }
}

fn write_levels(
    out: &mut Vec<u8>,
    px_wire: WireScale,
    qty_wire: WireScale,
    tick: i64,
    levels: &[SynthLevel],
) {
    for (i, l) in levels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_level(out, px_wire, qty_wire, l.tick * tick, l.qty);
    }
}

impl FrameSource for SynthMarket {
    fn connections(&self) -> &[ConnInfo] {
        &self.conns
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        let (kind, meta): (RecordKind, &[u8]) = match self.phase {
            Phase::Connect => {
                self.phase = Phase::Snapshot;
                self.buf.clear();
                (RecordKind::Connect, &self.ws_url)
            }
            Phase::Snapshot => {
                self.phase = Phase::Stream;
                self.t_recv += SNAPSHOT_DELAY_NS;
                self.write_snapshot();
                (RecordKind::RestSnapshot, &self.rest_url)
            }
            Phase::Stream if self.emitted < self.messages => {
                self.t_recv += self.draw_interval();
                self.write_next_frame();
                self.emitted += 1;
                (RecordKind::Frame, &[])
            }
            Phase::Stream => return Ok(None),
        };
        Ok(Some(RawRecord {
            t_recv: self.t_recv,
            conn: CONN,
            kind,
            meta,
            payload: &self.buf,
        }))
    }
}
