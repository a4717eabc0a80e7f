//! How an operator's name for an instrument (`/flatten BTCUSDT`, `/alert bybit-spot:BTCUSDT >
//! 65000`) becomes one instrument of the run.
//!
//! A bare symbol names the instrument of that symbol, case-insensitively, when the run has one.
//! A symbol the run trades on several venues names none of them alone: the lookup refuses it and
//! lists the venue-qualified names to say instead, so an operator's command never lands on a venue
//! picked for them. `VENUE:SYMBOL` names the symbol on that venue, the venue as configs and
//! `/positions` name it ([`pinion_core::Venue::name`], also case-insensitively); it is accepted
//! for a symbol on one venue too, and refused when the symbol does not trade there.

use pinion_core::Venue;

/// Why an operator's name for an instrument names no single instrument of the run. Its text is
/// what the operator is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// No instrument of the run has the symbol (on the venue named, when one was).
    #[error("No instrument {symbol}{}.", venue.map_or_else(String::new, |v| format!(" on {v}")))]
    Unknown {
        /// The symbol given, upper-cased.
        symbol: String,
        /// The venue given, when one was.
        venue: Option<&'static str>,
    },
    /// The part before `:` names no venue.
    #[error("No venue {venue:?}: this run trades on {}.", listed(traded))]
    UnknownVenue {
        /// What was given as the venue.
        venue: String,
        /// The venues the run trades on.
        traded: Vec<&'static str>,
    },
    /// The symbol trades, but not on the venue named.
    #[error("{symbol} does not trade on {venue}: it trades on {}.", listed(venues))]
    NotOnVenue {
        /// The symbol, as the run names it.
        symbol: String,
        /// The venue named.
        venue: &'static str,
        /// The venues it trades on.
        venues: Vec<&'static str>,
    },
    /// The symbol trades on several venues and none was named.
    #[error(
        "{symbol} trades on {}: say {}.",
        listed(venues),
        choices(symbol, venues)
    )]
    Ambiguous {
        /// The symbol, as the run names it.
        symbol: String,
        /// The venues it trades on, in instrument order.
        venues: Vec<&'static str>,
    },
}

/// `a`, `a and b`, `a, b and c`.
fn listed(items: &[&str]) -> String {
    match items {
        [] => "no venue".to_owned(),
        [one] => (*one).to_owned(),
        [head @ .., last] => format!("{} and {last}", head.join(", ")),
    }
}

/// `a:SYM or b:SYM`, `a:SYM, b:SYM or c:SYM`.
fn choices(symbol: &str, venues: &[&str]) -> String {
    let named: Vec<String> = venues.iter().map(|v| format!("{v}:{symbol}")).collect();
    match named.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [head @ .., last] => format!("{} or {last}", head.join(", ")),
    }
}

/// `SYMBOL` on `venue` as an operator may type it: `venue:SYMBOL`.
pub fn qualified(venue: &str, symbol: &str) -> String {
    format!("{venue}:{symbol}")
}

/// The index, in `names` (each instrument's `(symbol, venue)` in instrument order), of the one
/// instrument `given` names: a bare symbol, or `VENUE:SYMBOL`. See the module docs.
pub fn find_instrument<'a>(
    names: impl IntoIterator<Item = (&'a str, &'static str)>,
    given: &str,
) -> Result<usize, NameError> {
    let (venue, symbol) = match given.trim().split_once(':') {
        Some((v, s)) => (Some(v.trim()), s.trim()),
        None => (None, given.trim()),
    };
    let all: Vec<(usize, &str, &'static str)> = names
        .into_iter()
        .enumerate()
        .map(|(i, (s, v))| (i, s, v))
        .collect();
    let same: Vec<(usize, &str, &'static str)> = all
        .iter()
        .copied()
        .filter(|(_, s, _)| s.eq_ignore_ascii_case(symbol))
        .collect();
    let venues_of = |of: &[(usize, &str, &'static str)]| {
        let mut venues: Vec<&'static str> = Vec::new();
        for &(_, _, v) in of {
            if !venues.contains(&v) {
                venues.push(v);
            }
        }
        venues
    };
    let Some(venue) = venue else {
        return match same.as_slice() {
            [] => Err(NameError::Unknown {
                symbol: symbol.to_ascii_uppercase(),
                venue: None,
            }),
            [(i, ..)] => Ok(*i),
            [(_, s, _), ..] => Err(NameError::Ambiguous {
                symbol: (*s).to_owned(),
                venues: venues_of(&same),
            }),
        };
    };
    let Some(known) = Venue::ALL
        .into_iter()
        .map(Venue::name)
        .find(|n| n.eq_ignore_ascii_case(venue))
    else {
        return Err(NameError::UnknownVenue {
            venue: venue.to_owned(),
            traded: venues_of(&all),
        });
    };
    match (same.iter().find(|(_, _, v)| *v == known), same.first()) {
        (Some((i, ..)), _) => Ok(*i),
        (None, Some((_, s, _))) => Err(NameError::NotOnVenue {
            symbol: (*s).to_owned(),
            venue: known,
            venues: venues_of(&same),
        }),
        (None, None) => Err(NameError::Unknown {
            symbol: symbol.to_ascii_uppercase(),
            venue: Some(known),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BTCUSDT on Binance Spot and Bybit spot, ETHUSDT on Bybit linear only.
    const RUN: [(&str, &str); 3] = [
        ("BTCUSDT", "binance-spot"),
        ("ETHUSDT", "bybit-linear"),
        ("BTCUSDT", "bybit-spot"),
    ];

    fn find(given: &str) -> Result<usize, NameError> {
        find_instrument(RUN, given)
    }

    #[test]
    fn a_symbol_on_one_venue_is_found_bare_in_any_case() {
        assert_eq!(find("ETHUSDT"), Ok(1));
        assert_eq!(find("ethusdt"), Ok(1));
        assert_eq!(find(" EthUsdt "), Ok(1));
    }

    #[test]
    fn a_symbol_on_two_venues_is_refused_bare_with_the_names_to_say() {
        let e = find("btcusdt").expect_err("ambiguous");
        assert_eq!(
            e,
            NameError::Ambiguous {
                symbol: "BTCUSDT".into(),
                venues: vec!["binance-spot", "bybit-spot"],
            }
        );
        assert_eq!(
            e.to_string(),
            "BTCUSDT trades on binance-spot and bybit-spot: \
say binance-spot:BTCUSDT or bybit-spot:BTCUSDT."
        );
        let three = [
            ("BTCUSDT", "binance-spot"),
            ("BTCUSDT", "bybit-spot"),
            ("BTCUSDT", "bybit-linear"),
        ];
        assert_eq!(
            find_instrument(three, "BTCUSDT")
                .expect_err("ambiguous")
                .to_string(),
            "BTCUSDT trades on binance-spot, bybit-spot and bybit-linear: \
say binance-spot:BTCUSDT, bybit-spot:BTCUSDT or bybit-linear:BTCUSDT."
        );
    }

    #[test]
    fn a_qualified_name_picks_its_venue_in_any_case() {
        assert_eq!(find("binance-spot:BTCUSDT"), Ok(0));
        assert_eq!(find("bybit-spot:BTCUSDT"), Ok(2));
        // `/flatten` and `/book` upper-case their argument.
        assert_eq!(find("BYBIT-SPOT:BTCUSDT"), Ok(2));
        assert_eq!(find("bybit-spot:btcusdt"), Ok(2));
        // A symbol on one venue may be qualified too.
        assert_eq!(find("bybit-linear:ETHUSDT"), Ok(1));
    }

    #[test]
    fn a_venue_that_is_none_or_not_the_symbols_is_refused() {
        let e = find("bybit:BTCUSDT").expect_err("no such venue");
        assert_eq!(
            e.to_string(),
            "No venue \"bybit\": this run trades on binance-spot, bybit-linear and bybit-spot."
        );
        assert!(matches!(
            find(":BTCUSDT"),
            Err(NameError::UnknownVenue { .. })
        ));
        let e = find("bybit-spot:ETHUSDT").expect_err("not there");
        assert_eq!(
            e.to_string(),
            "ETHUSDT does not trade on bybit-spot: it trades on bybit-linear."
        );
        // A venue pinion knows that the run does not trade on.
        let e = find("binance-usdm:BTCUSDT").expect_err("not there");
        assert_eq!(
            e.to_string(),
            "BTCUSDT does not trade on binance-usdm: it trades on binance-spot and bybit-spot."
        );
    }

    #[test]
    fn an_unknown_symbol_is_refused_bare_or_qualified() {
        assert_eq!(
            find("nope").expect_err("unknown").to_string(),
            "No instrument NOPE."
        );
        assert_eq!(
            find("bybit-spot:nope").expect_err("unknown").to_string(),
            "No instrument NOPE on bybit-spot."
        );
        assert_eq!(
            find_instrument(Vec::<(&str, &'static str)>::new(), "BTCUSDT").expect_err("empty"),
            NameError::Unknown {
                symbol: "BTCUSDT".into(),
                venue: None
            }
        );
    }
}
