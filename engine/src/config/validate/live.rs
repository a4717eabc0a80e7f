//! `[live]` → [`LiveSettings`].

use std::time::Duration;

use pinion_feed::live::LiveSpec;

use super::{Problems, parse_venue};
use crate::config::Config;
use crate::config::settings::LiveSettings;

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
    Some(LiveSettings {
        spec,
        socket,
        ca_file: l.ca_file.clone(),
        exchange_info_cache: l.exchange_info_cache.clone(),
        record: l.record.clone(),
        duration: (l.duration_s > 0.0 && l.duration_s.is_finite())
            .then(|| Duration::from_secs_f64(l.duration_s)),
    })
}
