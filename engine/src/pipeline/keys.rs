//! `pinion live --trade`'s checks of the order key, before anything connects to trade: what
//! the exchange says about the account, the key and the commission
//! ([`pinion_gateway::binance::keycheck`]), and what pinion does about it.
//!
//! - A key that can withdraw (`apiRestrictions` `enableWithdrawals`) is refused
//!   ([`KeyRefusal::CanWithdraw`]) unless `--allow-withdrawal-key` is given: a trading engine
//!   never needs to move funds off the exchange, and a leaked key that can is the worst case.
//! - An account that cannot trade, or a key without Spot trading, is refused.
//! - A key bound to no IP address is a warning.
//! - Commission rates that differ from `[fees]` are a warning, and the exchange's are used for
//!   the run's fee accounting (standard + special + tax; the BNB discount is not assumed).
//!
//! What was found goes in the report (text and JSON).

use pinion_core::Venue;
use pinion_gateway::binance::keycheck::{self, ApiRestrictions, KeyCheckConfig, KeyFacts, Rates};
use pinion_net::rest::RestSettings;
use pinion_net::wss::WssSettings;
use pinion_strategy::FeeRates;
use serde_json::{Value, json};

use super::PipelineError;
use crate::config::Settings;

/// Why the key checks refuse to trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRefusal {
    /// The key can withdraw, and `--allow-withdrawal-key` was not given.
    #[error(
        "the order key can withdraw funds (apiRestrictions enableWithdrawals = true): trading \
         needs no withdrawals and a leaked key that has them can empty the account; use a key \
         without withdrawals, or pass --allow-withdrawal-key to trade with this one anyway"
    )]
    CanWithdraw,
    /// `account.status` says `canTrade` is false.
    #[error("the account cannot trade (account.status canTrade = false)")]
    AccountCannotTrade,
    /// The key cannot place Spot orders.
    #[error(
        "the order key cannot place Spot orders (apiRestrictions enableSpotAndMarginTrading = false)"
    )]
    KeyCannotTrade,
}

/// What the checks found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheckReport {
    /// What the exchange said.
    pub facts: KeyFacts,
    /// The key can withdraw and `--allow-withdrawal-key` let it trade.
    pub withdrawal_allowed: bool,
    /// The `[fees]` rates of the venue before the checks.
    pub configured: FeeRates,
    /// The rates the run uses: the exchange's.
    pub used: FeeRates,
    /// What is worth an operator's attention.
    pub warnings: Vec<String>,
}

/// Rates in bps as text (`10`, `7.5`, `-0.25`).
fn bps(e8: i64) -> String {
    let v = e8 as f64 / FeeRates::BPS as f64;
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

fn fee_rates(r: Rates) -> FeeRates {
    FeeRates {
        maker_e8: r.maker_e8,
        taker_e8: r.taker_e8,
    }
}

/// Decides on `facts`: refuses the key, or answers the report with the rates to use.
pub fn judge(
    facts: KeyFacts,
    configured: FeeRates,
    allow_withdrawal: bool,
) -> Result<KeyCheckReport, KeyRefusal> {
    let r = facts.restrictions;
    let withdrawals = r.is_some_and(|r| r.enable_withdrawals);
    if withdrawals && !allow_withdrawal {
        return Err(KeyRefusal::CanWithdraw);
    }
    if !facts.account.can_trade {
        return Err(KeyRefusal::AccountCannotTrade);
    }
    if r.is_some_and(|r| !r.enable_spot_and_margin_trading) {
        return Err(KeyRefusal::KeyCannotTrade);
    }
    let mut warnings = Vec::new();
    if r.is_none() {
        warnings.push(
            "the key's restrictions (withdrawals, IP binding) were not checked: the venue has no \
             wallet API (the Spot testnet)"
                .to_owned(),
        );
    }
    if withdrawals {
        warnings.push(
            "the order key can withdraw funds; trading with it because --allow-withdrawal-key was given"
                .to_owned(),
        );
    }
    if r.is_some_and(|r| !r.ip_restrict) {
        warnings.push(
            "the order key is not restricted to IP addresses (apiRestrictions ipRestrict = false): \
             anyone who has it can use it from anywhere; bind it to this host's addresses"
                .to_owned(),
        );
    }
    let effective: Vec<(&str, FeeRates)> = facts
        .commissions
        .iter()
        .map(|c| (c.symbol.as_str(), fee_rates(c.effective())))
        .collect();
    let used = match effective.first() {
        None => configured,
        Some(&(_, first)) => {
            // One rate per venue: symbols that differ are charged the highest of each.
            let highest = effective.iter().fold(first, |a, (_, r)| FeeRates {
                maker_e8: a.maker_e8.max(r.maker_e8),
                taker_e8: a.taker_e8.max(r.taker_e8),
            });
            if effective.iter().any(|(_, r)| *r != first) {
                warnings.push(format!(
                    "the exchange's commission rates differ between symbols ({}); the highest \
                     maker {} bps and taker {} bps are used for all",
                    effective
                        .iter()
                        .map(|(s, r)| format!(
                            "{s} maker {} taker {}",
                            bps(r.maker_e8),
                            bps(r.taker_e8)
                        ))
                        .collect::<Vec<_>>()
                        .join(", "),
                    bps(highest.maker_e8),
                    bps(highest.taker_e8)
                ));
            }
            highest
        }
    };
    if used != configured {
        warnings.push(format!(
            "commission rates differ from [fees]: configured maker {} bps, taker {} bps; the \
             exchange charges maker {} bps, taker {} bps, and those are used",
            bps(configured.maker_e8),
            bps(configured.taker_e8),
            bps(used.maker_e8),
            bps(used.taker_e8)
        ));
    }
    Ok(KeyCheckReport {
        withdrawal_allowed: withdrawals,
        facts,
        configured,
        used,
        warnings,
    })
}

/// Runs the checks for a `pinion live --trade` session of `settings` and, when they pass,
/// sets the venue's fee rates to the exchange's. `None` when the session does not trade.
pub fn check_order_key(
    settings: &mut Settings,
    allow_withdrawal: bool,
) -> Result<Option<KeyCheckReport>, PipelineError> {
    let Some(live) = settings.live.as_ref().filter(|l| l.trade) else {
        return Ok(None);
    };
    let Some(orders) = &live.orders else {
        return Err(PipelineError::Live(
            "--trade needs a [live.orders] table (where orders go and which key signs them)"
                .to_owned(),
        ));
    };
    if live.spec.venue.market() != Venue::BinanceSpot {
        return Err(PipelineError::Live(format!(
            "--trade: order entry is built for Binance Spot; {} is not",
            live.spec.venue
        )));
    }
    let tls = super::live::trust(live.ca_file.as_deref())?;
    let key = super::live::credentials(&orders.credentials)?;
    let mut wss = WssSettings::new(tls.clone());
    wss.socket = live.socket;
    let mut rest = RestSettings::new(tls);
    rest.socket = live.socket;
    let config = KeyCheckConfig {
        ws_api_url: orders.ws_api_url.clone(),
        rest_url: live.spec.rest_url.clone(),
        wss,
        rest,
        recv_window: orders.recv_window,
        symbols: live
            .spec
            .symbols
            .iter()
            .map(|s| s.to_ascii_uppercase())
            .collect(),
        timeout: std::time::Duration::from_secs(15),
        ask_restrictions: live.spec.venue != Venue::BinanceSpotTestnet,
    };
    let venue = live.spec.venue;
    let facts = keycheck::query(&config, &key)
        .map_err(|e| PipelineError::Live(format!("checking the order key: {e}")))?;
    let configured = settings.fees.for_venue(venue);
    let report = judge(facts, configured, allow_withdrawal)?;
    let fees = &mut settings.fees.venues;
    fees.retain(|(v, _)| *v != venue);
    fees.push((venue, report.used));
    Ok(Some(report))
}

impl KeyCheckReport {
    /// The report's lines: what was found, then each warning.
    pub fn lines(&self) -> Vec<String> {
        let f = &self.facts;
        let mut lines = vec![format!(
            "order key: withdrawals {}, IP restricted {}, account {} (can trade {}), commission maker {} bps taker {} bps (config {} / {})",
            match f.restrictions {
                None => "not checked",
                Some(r) if r.enable_withdrawals => "ENABLED (allowed by --allow-withdrawal-key)",
                Some(_) => "disabled",
            },
            match f.restrictions {
                None => "not checked",
                Some(r) if r.ip_restrict => "yes",
                Some(_) => "NO",
            },
            if f.account.account_type.is_empty() {
                "?"
            } else {
                f.account.account_type.as_str()
            },
            f.account.can_trade,
            bps(self.used.maker_e8),
            bps(self.used.taker_e8),
            bps(self.configured.maker_e8),
            bps(self.configured.taker_e8),
        )];
        lines.extend(self.warnings.iter().map(|w| format!("warning: {w}")));
        lines
    }

    /// The report as JSON (`key_checks` in `--report-json`).
    pub fn to_json(&self) -> Value {
        let f = &self.facts;
        let r = f.restrictions;
        let flag = |get: fn(&ApiRestrictions) -> bool| r.as_ref().map(get);
        let rates =
            |x: FeeRates| json!({"maker_bps": bps(x.maker_e8), "taker_bps": bps(x.taker_e8)});
        json!({
            "restrictions_checked": r.is_some(),
            "enable_withdrawals": flag(|r| r.enable_withdrawals),
            "withdrawal_allowed_by_flag": self.withdrawal_allowed,
            "ip_restrict": flag(|r| r.ip_restrict),
            "enable_spot_and_margin_trading": flag(|r| r.enable_spot_and_margin_trading),
            "can_trade": f.account.can_trade,
            "can_withdraw_account": f.account.can_withdraw,
            "account_type": f.account.account_type,
            "permissions": f.account.permissions,
            "clock_offset_ms": f.clock_offset_ms,
            "commission": f.commissions.iter().map(|c| {
                let e = c.effective();
                json!({
                    "symbol": c.symbol,
                    "maker_bps": bps(e.maker_e8),
                    "taker_bps": bps(e.taker_e8),
                    "bnb_discount_enabled": c.discount_enabled,
                })
            }).collect::<Vec<_>>(),
            "fees_configured": rates(self.configured),
            "fees_used": rates(self.used),
            "warnings": self.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_gateway::binance::keycheck::{AccountState, SymbolCommission};

    fn facts(withdrawals: bool, ip: bool, rates: &[(i64, i64)]) -> KeyFacts {
        KeyFacts {
            account: AccountState {
                can_trade: true,
                can_withdraw: true,
                account_type: "SPOT".into(),
                permissions: vec!["SPOT".into()],
            },
            commissions: rates
                .iter()
                .enumerate()
                .map(|(n, &(m, t))| SymbolCommission {
                    symbol: format!("S{n}"),
                    standard: Rates {
                        maker_e8: m,
                        taker_e8: t,
                    },
                    special: Rates::default(),
                    tax: Rates::default(),
                    discount_enabled: false,
                })
                .collect(),
            restrictions: Some(ApiRestrictions {
                enable_withdrawals: withdrawals,
                ip_restrict: ip,
                enable_spot_and_margin_trading: true,
                enable_reading: true,
            }),
            clock_offset_ms: 0,
        }
    }

    const TEN_BPS: FeeRates = FeeRates {
        maker_e8: 100_000,
        taker_e8: 100_000,
    };

    #[test]
    fn a_key_that_can_withdraw_is_refused_unless_allowed_and_then_warned_about() {
        let f = facts(true, true, &[(100_000, 100_000)]);
        assert_eq!(
            judge(f.clone(), TEN_BPS, false),
            Err(KeyRefusal::CanWithdraw)
        );
        let r = judge(f, TEN_BPS, true).expect("allowed");
        assert!(r.withdrawal_allowed);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("--allow-withdrawal-key"));
    }

    #[test]
    fn a_safe_key_with_the_configured_rates_passes_without_a_warning() {
        let r = judge(facts(false, true, &[(100_000, 100_000)]), TEN_BPS, false).expect("ok");
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.used, TEN_BPS);
    }

    #[test]
    fn no_ip_restriction_is_a_warning_not_a_refusal() {
        let r = judge(facts(false, false, &[(100_000, 100_000)]), TEN_BPS, false).expect("ok");
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("ipRestrict = false"));
    }

    #[test]
    fn different_rates_are_warned_about_and_the_exchanges_used() {
        let r = judge(facts(false, true, &[(75_000, 120_000)]), TEN_BPS, false).expect("ok");
        assert_eq!(
            r.used,
            FeeRates {
                maker_e8: 75_000,
                taker_e8: 120_000
            }
        );
        assert_eq!(r.warnings.len(), 1);
        assert!(
            r.warnings[0].contains("maker 7.5 bps, taker 12 bps"),
            "{}",
            r.warnings[0]
        );
    }

    #[test]
    fn symbols_with_different_rates_are_charged_the_highest_of_each() {
        let r = judge(
            facts(false, true, &[(100_000, 50_000), (20_000, 200_000)]),
            TEN_BPS,
            false,
        )
        .expect("ok");
        assert_eq!(
            r.used,
            FeeRates {
                maker_e8: 100_000,
                taker_e8: 200_000
            }
        );
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    }

    #[test]
    fn an_account_or_key_that_cannot_trade_is_refused() {
        let mut f = facts(false, true, &[]);
        f.account.can_trade = false;
        assert_eq!(
            judge(f.clone(), TEN_BPS, false),
            Err(KeyRefusal::AccountCannotTrade)
        );
        f.account.can_trade = true;
        if let Some(r) = f.restrictions.as_mut() {
            r.enable_spot_and_margin_trading = false;
        }
        assert_eq!(judge(f, TEN_BPS, false), Err(KeyRefusal::KeyCannotTrade));
    }

    #[test]
    fn restrictions_not_asked_are_said_to_be_unchecked() {
        let mut f = facts(false, true, &[(100_000, 100_000)]);
        f.restrictions = None;
        let r = judge(f, TEN_BPS, false).expect("ok");
        assert!(!r.withdrawal_allowed);
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("not checked"), "{}", r.warnings[0]);
        assert_eq!(r.to_json()["enable_withdrawals"], Value::Null);
    }

    #[test]
    fn bps_text_is_short_and_exact() {
        assert_eq!(bps(100_000), "10");
        assert_eq!(bps(75_000), "7.5");
        assert_eq!(bps(-2_500), "-0.25");
        assert_eq!(bps(0), "0");
    }
}
