//! Loading instrument specs from exchange responses: Binance `exchangeInfo` and Bybit
//! `instruments-info`.
