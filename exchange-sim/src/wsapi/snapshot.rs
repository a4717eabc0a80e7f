//! What `/sim/account` serves and [`LiveExchange::sim_account`](crate::LiveExchange::sim_account)
//! returns: every order the account ever had, every trade, and the balances, amounts as
//! normalised decimal strings (`"0.01"`, `"61837.63"`, `"0"`: no trailing zeros).

/// One order, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimOrder {
    /// Symbol, upper case.
    pub symbol: String,
    /// The exchange's order id.
    pub order_id: u64,
    /// The client order id it has now (an amendment may have changed it).
    pub client_order_id: String,
    /// `BUY` or `SELL`.
    pub side: String,
    /// `LIMIT`, `LIMIT_MAKER`, `MARKET`, or a contingent type (`STOP_LOSS`, `TAKE_PROFIT`, their
    /// `_LIMIT`s).
    #[serde(rename = "type")]
    pub order_type: String,
    /// Limit price (`"0"` for a market order).
    pub price: String,
    /// Quantity (after any amendment).
    pub orig_qty: String,
    /// Quantity executed.
    pub executed_qty: String,
    /// Quote quantity executed (the exchange's spelling).
    pub cummulative_quote_qty: String,
    /// `NEW`, `PARTIALLY_FILLED`, `FILLED`, `CANCELED`, `EXPIRED` or `EXPIRED_IN_MATCH`
    /// (self-trade prevention ended it).
    pub status: String,
    /// A contingent order's `stopPrice`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<String>,
    /// A trailing stop's `trailingDelta`, BIPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailing_delta: Option<u32>,
    /// The order list it belongs to (`orderListId`), when it is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_list_id: Option<u64>,
    /// The quantity self-trade prevention took from it (`preventedQuantity`), when a match of
    /// it was prevented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prevented_qty: Option<String>,
}

/// One trade of the account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimTrade {
    /// Symbol, upper case.
    pub symbol: String,
    /// Trade id (the `t` of its execution report).
    pub id: u64,
    /// The order it filled.
    pub order_id: u64,
    /// Price.
    pub price: String,
    /// Base quantity.
    pub qty: String,
    /// Quote quantity (price × qty).
    pub quote_qty: String,
    /// Whether the account bought.
    pub is_buyer: bool,
    /// Whether the account's order was the resting one.
    pub is_maker: bool,
    /// Commission charged.
    pub commission: String,
    /// The asset it was charged in (the one received).
    pub commission_asset: String,
    /// Execution time, ms since the Unix epoch.
    pub time: u64,
}

/// One asset's balance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SimBalance {
    /// Asset, upper case.
    pub asset: String,
    /// Free amount.
    pub free: String,
    /// Amount locked by open orders.
    pub locked: String,
}

/// The simulated account: `{"orders":[…],"trades":[…],"balances":[…]}`, orders by order id,
/// trades by trade id, balances by asset.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct SimAccount {
    /// Every order ever accepted (rejected requests leave none).
    pub orders: Vec<SimOrder>,
    /// Every trade.
    pub trades: Vec<SimTrade>,
    /// Every asset the account holds or held.
    pub balances: Vec<SimBalance>,
}
