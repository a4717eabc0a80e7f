//! Finer units for an instrument's prices and quantities than its tick and step give.
//!
//! Venues send book levels at a precision finer than today's trading grid: Binance Spot writes
//! quantities at the base asset's precision (8 decimals) and keeps levels from before a step or
//! tick change. The spec's unit is made finer and the tick, step and filters are rescaled with
//! it, so order checks are unchanged while the book can hold every level it is sent.

use pinion_core::InstrumentSpec;

/// `spec` with quantities counted in units of `10^-decimals` rather than of its step's
/// decimals: the step and the quantity filters are rescaled, so order checks are unchanged.
pub fn with_qty_decimals(mut spec: InstrumentSpec, decimals: u8) -> Result<InstrumentSpec, String> {
    if decimals > pinion_core::decimal::MAX_DECIMALS {
        return Err(format!(
            "qty_decimals {decimals} is more than {}",
            pinion_core::decimal::MAX_DECIMALS
        ));
    }
    if decimals < spec.qty_decimals {
        return Err(format!(
            "qty_decimals {decimals} is coarser than the step ({} decimals)",
            spec.qty_decimals
        ));
    }
    let factor = pinion_core::decimal::pow10(decimals - spec.qty_decimals);
    let scale = |v: i64| {
        v.checked_mul(factor).ok_or_else(|| {
            format!(
                "{}: a quantity limit overflows at {decimals} decimals",
                spec.symbol
            )
        })
    };
    spec.step = pinion_core::Qty(scale(spec.step.0)?);
    spec.min_qty = pinion_core::Qty(scale(spec.min_qty.0)?);
    spec.max_qty = pinion_core::Qty(scale(spec.max_qty.0)?);
    spec.min_notional = spec.min_notional.saturating_mul(i128::from(factor));
    spec.qty_decimals = decimals;
    Ok(spec)
}

/// `spec` with prices counted in units of `10^-decimals` rather than of its tick's decimals:
/// the tick and the price filters are rescaled, so order checks are unchanged.
pub fn with_px_decimals(mut spec: InstrumentSpec, decimals: u8) -> Result<InstrumentSpec, String> {
    if decimals > pinion_core::decimal::MAX_DECIMALS {
        return Err(format!(
            "px_decimals {decimals} is more than {}",
            pinion_core::decimal::MAX_DECIMALS
        ));
    }
    if decimals < spec.price_decimals {
        return Err(format!(
            "px_decimals {decimals} is coarser than the tick ({} decimals)",
            spec.price_decimals
        ));
    }
    let factor = pinion_core::decimal::pow10(decimals - spec.price_decimals);
    let scale = |v: i64| {
        v.checked_mul(factor).ok_or_else(|| {
            format!(
                "{}: a price limit overflows at {decimals} decimals",
                spec.symbol
            )
        })
    };
    spec.tick = pinion_core::Px(scale(spec.tick.0)?);
    spec.min_price = pinion_core::Px(scale(spec.min_price.0)?);
    spec.max_price = pinion_core::Px(scale(spec.max_price.0)?);
    spec.min_notional = spec.min_notional.saturating_mul(i128::from(factor));
    spec.price_decimals = decimals;
    Ok(spec)
}
