//! The settings of a [`FeedServer`](crate::FeedServer): pacing, keep-alive, limits.
//!
//! Checked once, when the server starts ([`FeedConfig::validate`]), so a session never meets a
//! setting that could make it misbehave (a zero interval, a speed that is not a positive
//! number).

use std::time::Duration;

use pinion_core::ConnId;

use crate::ExchangeSimError;

/// How fast frames are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Back to back, as fast as the client reads.
    AsFastAsPossible,
    /// At the recorded receive times (`t_recv`) divided by `speed` (2.0 = twice as fast).
    Recorded {
        /// The speed factor, finite and positive.
        speed: f64,
    },
}

/// Settings of a [`FeedServer`](crate::FeedServer). [`FeedConfig::default`] behaves like Binance Spot's
/// market-stream server, replaying as fast as possible.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedConfig {
    /// Serve only frames of this connection of the source; `None` serves every connection's
    /// frames in source order (the same thing for single-connection recordings).
    pub connection: Option<ConnId>,
    /// How fast frames are sent.
    pub pacing: Pacing,
    /// Interval between server pings (Binance Spot: 20 s); `None` sends none.
    pub ping_interval: Option<Duration>,
    /// A ping not answered with a pong carrying its payload within this time ends the session
    /// (Binance Spot: 1 minute).
    pub pong_timeout: Duration,
    /// Send a `serverShutdown` event before closing at the end of the source, as Binance does
    /// before a planned shutdown.
    pub shutdown_notice: bool,
    /// Send at most this many frames per session.
    pub max_frames: Option<u64>,
    /// A client that does not read for this long is dropped (a blocked write times out).
    pub write_timeout: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            connection: None,
            pacing: Pacing::AsFastAsPossible,
            ping_interval: Some(Duration::from_secs(20)),
            pong_timeout: Duration::from_secs(60),
            shutdown_notice: true,
            max_frames: None,
            write_timeout: Duration::from_secs(30),
        }
    }
}

impl FeedConfig {
    /// Checks the settings that could make a session misbehave.
    pub fn validate(&self) -> Result<(), ExchangeSimError> {
        if let Pacing::Recorded { speed } = self.pacing
            && !(speed.is_finite() && speed > 0.0)
        {
            return Err(ExchangeSimError::Config(
                "pacing speed must be finite and positive",
            ));
        }
        if self.ping_interval.is_some_and(|d| d.is_zero()) {
            return Err(ExchangeSimError::Config("ping interval must not be zero"));
        }
        if self.pong_timeout.is_zero() || self.write_timeout.is_zero() {
            return Err(ExchangeSimError::Config(
                "pong and write timeouts must not be zero",
            ));
        }
        Ok(())
    }
}
