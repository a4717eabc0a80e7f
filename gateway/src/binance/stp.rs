//! The self-trade prevention mode of a session's orders against the modes each symbol allows.
//!
//! Every order of a session carries the one configured mode ([`StpMode`], `[live.orders]
//! stp_mode`), or none, and then the exchange applies the symbol's
//! `defaultSelfTradePreventionMode`. A symbol lists the modes an order may name in
//! `allowedSelfTradePreventionModes`; an order naming another is refused (`-1013`). The mode is
//! the same for every order, so a mode one symbol does not allow would refuse all of that
//! symbol's orders: [`check_stp_mode`] finds that once, at start-up, from `exchangeInfo`, so the
//! run can stop before its first order instead of trading with its second guard against
//! self-trades gone.
//!
//! What cannot be checked is let through and said so: a symbol missing from the instrument list
//! (or no list at all), or a list in the format from before self-trade prevention (no allowed
//! modes given; the exchange itself then refuses a mode it does not know).

use pinion_feed::exchange_info::SymbolStpModes;

use super::template::StpMode;

/// A configured mode a symbol does not allow: each of its orders would be refused with `-1013`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "live.orders.stp_mode = \"{}\": {symbol} does not allow it (its allowed modes: {}; its \
     default: {}); set one of the allowed modes, or leave stp_mode out so that each order takes \
     the symbol's default",
    .mode.as_str(),
    names(.allowed),
    .default.as_deref().unwrap_or("not given")
)]
pub struct StpNotAllowed {
    /// The symbol.
    pub symbol: String,
    /// The configured mode.
    pub mode: StpMode,
    /// The symbol's `allowedSelfTradePreventionModes`, as the exchange names them.
    pub allowed: Vec<String>,
    /// The symbol's `defaultSelfTradePreventionMode`, when given.
    pub default: Option<String>,
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}

/// What [`check_stp_mode`] found for a symbol the run may trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StpFinding {
    /// The configured mode is among the symbol's allowed modes.
    Allowed,
    /// No mode is configured: orders carry none and the symbol's default applies (the default
    /// as the instrument list gives it, when it does).
    SymbolDefault(Option<String>),
    /// The symbol's entry gives no allowed modes (a format from before self-trade
    /// prevention): the mode is sent unchecked.
    NoAllowedList,
    /// The symbol is not in the instrument list, or there is none: the mode is sent
    /// unchecked.
    NotListed,
}

impl StpFinding {
    /// A start-up note for `symbol` when the finding is worth one (the checked, allowed case is
    /// not).
    pub fn note(&self, symbol: &str, mode: Option<StpMode>) -> Option<String> {
        let mode = mode.map_or("", StpMode::as_str);
        match self {
            StpFinding::Allowed => None,
            StpFinding::SymbolDefault(Some(default)) => Some(format!(
                "{symbol}: no stp_mode configured; orders take the symbol's default, {default}"
            )),
            StpFinding::SymbolDefault(None) => Some(format!(
                "{symbol}: no stp_mode configured; orders take the symbol's default (the \
                 instrument list does not name it)"
            )),
            StpFinding::NoAllowedList => Some(format!(
                "{symbol}: stp_mode {mode} not checked: the instrument list gives no \
                 allowedSelfTradePreventionModes (a format older than self-trade prevention)"
            )),
            StpFinding::NotListed => Some(format!(
                "{symbol}: stp_mode {mode} not checked: the symbol is not in an instrument list"
            )),
        }
    }
}

/// Whether orders of `symbol` may carry `configured` (`None`: they carry no mode), by the
/// symbol's entry of the instrument list (`listed`; `None` when the symbol has none). Modes are
/// compared by the exchange's names, exactly.
pub fn check_stp_mode(
    configured: Option<StpMode>,
    symbol: &str,
    listed: Option<&SymbolStpModes>,
) -> Result<StpFinding, StpNotAllowed> {
    let Some(mode) = configured else {
        return Ok(StpFinding::SymbolDefault(
            listed.and_then(|l| l.default.clone()),
        ));
    };
    let Some(listed) = listed else {
        return Ok(StpFinding::NotListed);
    };
    let Some(allowed) = &listed.allowed else {
        return Ok(StpFinding::NoAllowedList);
    };
    if allowed.iter().any(|a| a == mode.as_str()) {
        Ok(StpFinding::Allowed)
    } else {
        Err(StpNotAllowed {
            symbol: symbol.to_owned(),
            mode,
            allowed: allowed.clone(),
            default: listed.default.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(default: Option<&str>, allowed: Option<&[&str]>) -> SymbolStpModes {
        SymbolStpModes {
            symbol: "BTCUSDT".into(),
            default: default.map(str::to_owned),
            allowed: allowed.map(|a| a.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn a_mode_the_symbol_allows_passes() {
        let l = listed(Some("NONE"), Some(&["NONE", "EXPIRE_TAKER", "EXPIRE_BOTH"]));
        for mode in [StpMode::None, StpMode::ExpireTaker, StpMode::ExpireBoth] {
            assert_eq!(
                check_stp_mode(Some(mode), "BTCUSDT", Some(&l)),
                Ok(StpFinding::Allowed),
                "{mode:?}"
            );
        }
        assert_eq!(
            StpFinding::Allowed.note("BTCUSDT", Some(StpMode::None)),
            None
        );
    }

    #[test]
    fn a_mode_the_symbol_does_not_allow_is_refused_with_what_it_allows() {
        // The exchange's own example: EXPIRE_MAKER on a symbol allowing three other modes.
        let l = listed(Some("NONE"), Some(&["NONE", "EXPIRE_TAKER", "EXPIRE_BOTH"]));
        let err = check_stp_mode(Some(StpMode::ExpireMaker), "BTCUSDT", Some(&l))
            .expect_err("EXPIRE_MAKER is not allowed");
        assert_eq!(
            err,
            StpNotAllowed {
                symbol: "BTCUSDT".into(),
                mode: StpMode::ExpireMaker,
                allowed: vec!["NONE".into(), "EXPIRE_TAKER".into(), "EXPIRE_BOTH".into()],
                default: Some("NONE".into()),
            }
        );
        assert_eq!(
            err.to_string(),
            "live.orders.stp_mode = \"EXPIRE_MAKER\": BTCUSDT does not allow it (its allowed \
             modes: NONE, EXPIRE_TAKER, EXPIRE_BOTH; its default: NONE); set one of the allowed \
             modes, or leave stp_mode out so that each order takes the symbol's default"
        );
        // DECREMENT, newer than the list: refused by name, not taken for a known mode.
        let old = listed(None, Some(&["NONE", "EXPIRE_MAKER"]));
        let err = check_stp_mode(Some(StpMode::Decrement), "ETHBTC", Some(&old)).unwrap_err();
        assert_eq!(
            (err.symbol.as_str(), err.mode),
            ("ETHBTC", StpMode::Decrement)
        );
        assert!(err.to_string().contains("its default: not given"), "{err}");
        // An empty list allows nothing that can be named.
        let none = listed(Some("NONE"), Some(&[]));
        let err = check_stp_mode(Some(StpMode::None), "BTCUSDT", Some(&none)).unwrap_err();
        assert!(err.to_string().contains("allowed modes: none;"), "{err}");
    }

    #[test]
    fn names_are_compared_exactly() {
        let l = listed(None, Some(&["expire_maker", "EXPIRE_MAKER "]));
        assert!(check_stp_mode(Some(StpMode::ExpireMaker), "BTCUSDT", Some(&l)).is_err());
    }

    #[test]
    fn no_configured_mode_takes_the_symbols_default_whatever_it_allows() {
        let l = listed(Some("EXPIRE_MAKER"), Some(&["NONE"]));
        let found = check_stp_mode(None, "BTCUSDT", Some(&l));
        assert_eq!(
            found,
            Ok(StpFinding::SymbolDefault(Some("EXPIRE_MAKER".into())))
        );
        assert_eq!(
            found.unwrap().note("BTCUSDT", None).as_deref(),
            Some("BTCUSDT: no stp_mode configured; orders take the symbol's default, EXPIRE_MAKER")
        );
        assert_eq!(
            check_stp_mode(None, "BTCUSDT", None),
            Ok(StpFinding::SymbolDefault(None))
        );
    }

    #[test]
    fn what_cannot_be_checked_passes_and_says_why() {
        let old = listed(None, None);
        let found = check_stp_mode(Some(StpMode::ExpireMaker), "BTCUSDT", Some(&old));
        assert_eq!(found, Ok(StpFinding::NoAllowedList));
        let note = found.unwrap().note("BTCUSDT", Some(StpMode::ExpireMaker));
        assert!(
            note.as_deref()
                .is_some_and(|n| n.contains("EXPIRE_MAKER not checked")
                    && n.contains("allowedSelfTradePreventionModes")),
            "{note:?}"
        );
        let found = check_stp_mode(Some(StpMode::ExpireMaker), "BTCUSDT", None);
        assert_eq!(found, Ok(StpFinding::NotListed));
        assert!(
            found
                .unwrap()
                .note("BTCUSDT", Some(StpMode::ExpireMaker))
                .is_some_and(|n| n.contains("not in an instrument list"))
        );
    }

    #[test]
    fn every_mode_parses_from_its_own_name_only() {
        for mode in StpMode::ALL {
            assert_eq!(StpMode::parse(mode.as_str()), Some(mode));
        }
        for name in ["TRANSFER", "none", "", "EXPIRE_MAKER "] {
            assert_eq!(StpMode::parse(name), None, "{name:?}");
        }
    }
}
