//! `[live]` → [`LiveSettings`].

use std::time::Duration;

use pinion_feed::live::{Encoding, LiveSpec};

use super::{Problems, parse_venue};
use crate::config::Config;
use crate::config::live::LiveOrdersConfig;
use crate::config::settings::{LiveSettings, OrderEntrySettings};
use pinion_gateway::binance::OpenOrdersPolicy;
use pinion_gateway::binance::sign::{CredentialsConfig, KeyKind};
use pinion_gateway::binance::template::{RecvWindow, StpMode};

/// Checks `[live]`, when there is one.
pub(super) fn live(config: &Config, p: &mut Problems) -> Option<LiveSettings> {
    let l = config.live.as_ref()?;
    let venue = parse_venue(p, "live.venue", &l.venue)?;
    let ms = Duration::from_millis;
    let mut spec = LiveSpec::new(
        venue,
        &l.ws_url,
        &l.rest_url,
        l.symbols.iter().map(|s| s.trim().to_owned()).collect(),
        l.streams.iter().map(|s| s.trim().to_owned()).collect(),
    );
    spec.snapshot_limit = l.snapshot_limit;
    spec.redundant_ws_url = l.redundant_ws_url.clone();
    let mut encoding = |key: &str, text: Option<&String>| match text.map(String::as_str) {
        None => Some(Encoding::Json),
        Some(t) => Encoding::parse(t).or_else(|| {
            p.add(key, format!("{t:?}: must be \"json\" or \"sbe\""));
            None
        }),
    };
    spec.encoding = encoding("live.encoding", l.encoding.as_ref()).unwrap_or_default();
    spec.redundant_encoding = match &l.redundant_encoding {
        None => spec.encoding,
        some => encoding("live.redundant_encoding", some.as_ref()).unwrap_or_default(),
    };
    let sbe = spec.encoding == Encoding::Sbe
        || (spec.redundant_ws_url.is_some() && spec.redundant_encoding == Encoding::Sbe);
    let sbe_api_key_env = sbe
        .then(|| {
            l.sbe_api_key_env
                .clone()
                .or_else(|| l.orders.as_ref().map(|o| o.api_key_env.clone()))
        })
        .flatten();
    if sbe && sbe_api_key_env.is_none() {
        p.add(
            "live.sbe_api_key_env",
            "SBE streams need an Ed25519 API key: name the variable that holds it",
        );
    }
    spec.gap_hold = ms(l.gap_hold_ms);
    if let Some(url) = &l.redundant_ws_url
        && !url.starts_with("wss://")
    {
        p.add(
            "live.redundant_ws_url",
            format!("{url:?}: must be a wss:// URL"),
        );
    }
    if l.max_streams_per_connection > 0 {
        spec.max_streams_per_connection = l.max_streams_per_connection;
    }
    if l.control_messages_per_sec > 0.0 {
        spec.control_messages_per_sec = l.control_messages_per_sec;
    }
    spec.ack_timeout = ms(l.ack_timeout_ms);
    spec.read_idle_timeout = ms(l.read_idle_timeout_ms);
    spec.stream_stale_after = ms(l.stream_stale_ms);
    spec.healthy_after = ms(l.healthy_after_ms);
    spec.reconnect_base = ms(l.reconnect_base_ms);
    spec.reconnect_cap = ms(l.reconnect_cap_ms);
    spec.rest_weight_share = l.rest_weight_share;
    for (key, v) in [
        ("live.rotate_after_s", l.rotate_after_s),
        ("live.rotate_jitter_s", l.rotate_jitter_s),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            p.add(key, "must be a number of seconds, 0 or more");
        }
    }
    let secs = |v: f64| Duration::from_secs_f64(if v.is_finite() { v.max(0.0) } else { 0.0 });
    spec.rotate_after = secs(l.rotate_after_s);
    if l.rest_weight_limit > 0 {
        spec.rest_weight_limit = l.rest_weight_limit;
    }
    if !(l.rest_weight_window_s.is_finite() && l.rest_weight_window_s > 0.0) {
        p.add(
            "live.rest_weight_window_s",
            "must be a positive number of seconds",
        );
    } else {
        spec.rest_weight_window = secs(l.rest_weight_window_s);
    }
    spec.rotate_jitter = secs(l.rotate_jitter_s);
    spec.seed = l.seed;
    if !l.ws_url.starts_with("wss://") {
        p.add(
            "live.ws_url",
            format!("{:?}: must be a wss:// URL", l.ws_url),
        );
    }
    if !l.rest_url.starts_with("https://") {
        p.add(
            "live.rest_url",
            format!("{:?}: must be an https:// URL", l.rest_url),
        );
    }
    if !(l.duration_s.is_finite() && l.duration_s >= 0.0) {
        p.add("live.duration_s", "must be a number of seconds, 0 or more");
    }
    if let Err(e) = spec.validate() {
        p.add("live", e.to_string());
    }
    let socket = pinion_net::sockopt::SocketOptions {
        recv_buffer: (l.recv_buffer > 0).then_some(l.recv_buffer),
        send_buffer: (l.send_buffer > 0).then_some(l.send_buffer),
        quickack: l.quickack,
        busy_poll_us: (l.busy_poll_us > 0).then_some(l.busy_poll_us),
    };
    let orders = l.orders.as_ref().and_then(|o| orders(o, p));
    Some(LiveSettings {
        orders,
        trade: false,
        sbe_api_key_env,
        spec,
        socket,
        ca_file: l.ca_file.clone(),
        exchange_info_cache: l.exchange_info_cache.clone(),
        record: l.record.clone(),
        duration: (l.duration_s > 0.0 && l.duration_s.is_finite())
            .then(|| Duration::from_secs_f64(l.duration_s)),
    })
}

/// Checks `[live.orders]`.
fn orders(o: &LiveOrdersConfig, p: &mut Problems) -> Option<OrderEntrySettings> {
    if !o.ws_api_url.starts_with("wss://") {
        p.add(
            "live.orders.ws_api_url",
            format!("{:?}: must be a wss:// URL", o.ws_api_url),
        );
    }
    let kind = match o.key_kind.as_str() {
        "ed25519" => Some(KeyKind::Ed25519),
        "hmac" => Some(KeyKind::Hmac),
        other => {
            p.add(
                "live.orders.key_kind",
                format!("{other:?}: must be \"ed25519\" or \"hmac\""),
            );
            None
        }
    };
    for (key, name) in [
        ("live.orders.api_key_env", &o.api_key_env),
        ("live.orders.secret_env", &o.secret_env),
    ] {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            p.add(
                key,
                format!("{name:?}: must name an environment variable (letters, digits, _)"),
            );
        }
    }
    let recv_window = if !(o.recv_window_ms.is_finite() && o.recv_window_ms >= 0.0) {
        p.add(
            "live.orders.recv_window_ms",
            "must be a number of ms, 0 or more",
        );
        None
    } else if o.recv_window_ms == 0.0 {
        None
    } else {
        match RecvWindow::from_micros((o.recv_window_ms * 1000.0).round() as u64) {
            Ok(w) => Some(w),
            Err(e) => {
                p.add("live.orders.recv_window_ms", e.to_string());
                None
            }
        }
    };
    let stp_mode = match o.stp_mode.as_deref() {
        None => None,
        Some(name) => StpMode::parse(name).or_else(|| {
            p.add(
                "live.orders.stp_mode",
                format!(
                    "{name:?}: one of NONE, EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH, DECREMENT \
                     (or leave it out for the symbol's default)"
                ),
            );
            None
        }),
    };
    let open_orders = match o.open_orders.as_str() {
        "cancel" => OpenOrdersPolicy::CancelAll,
        "keep" => OpenOrdersPolicy::Keep,
        other => {
            p.add(
                "live.orders.open_orders",
                format!("{other:?}: must be \"cancel\" or \"keep\""),
            );
            OpenOrdersPolicy::CancelAll
        }
    };
    if let Some(cancel) = o.cancel_on_exit {
        let policy = if cancel { "cancel_all" } else { "leave" };
        p.add(
            "live.orders.cancel_on_exit",
            format!(
                "replaced by the [exit] table: write `[exit] policy = \"{policy}\"` \
                 (or \"keep_protective\" to keep stop and take-profit orders)"
            ),
        );
    }
    if o.answer_timeout_ms == 0 {
        p.add("live.orders.answer_timeout_ms", "must be above 0");
    }
    let response_format = match o.response_format.as_str() {
        "json" => Some(pinion_gateway::binance::ResponseFormat::Json),
        "sbe" => Some(pinion_gateway::binance::ResponseFormat::Sbe),
        other => {
            p.add(
                "live.orders.response_format",
                format!("{other:?}: must be \"json\" or \"sbe\""),
            );
            None
        }
    };
    Some(OrderEntrySettings {
        ws_api_url: o.ws_api_url.clone(),
        credentials: CredentialsConfig {
            kind: kind?,
            api_key_env: o.api_key_env.clone(),
            secret_env: o.secret_env.clone(),
        },
        recv_window,
        stp_mode,
        open_orders,
        answer_timeout_ms: o.answer_timeout_ms,
        query_after_ms: o.query_after_ms,
        connects_per_5min: o.connects_per_5min,
        record: o.record.clone(),
        breaker: pinion_gateway::binance::breaker::BreakerConfig {
            threshold: o.breaker_failures,
            open_for_ns: o.breaker_open_ms.saturating_mul(1_000_000),
        },
        response_format: response_format?,
    })
}
