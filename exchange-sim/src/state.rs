//! What the listener and every connection thread share: the settings, the source opener, the
//! snapshot table, the TLS config, the stop flag and the counters.
//!
//! It sits below both `server` (which builds it and accepts) and `session` (which reads it and
//! counts), so the two depend on it and not on each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pinion_feed::{FrameSource, SourceError};

use crate::config::FeedConfig;
use crate::snapshots::SnapshotTable;

/// Opens a fresh copy of the source: every session replays it from the start.
pub type SourceOpener =
    dyn Fn() -> Result<Box<dyn FrameSource + Send>, SourceError> + Send + Sync + 'static;

/// Counters of a running server.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections: AtomicU64,
    pub sessions: AtomicU64,
    pub sessions_completed: AtomicU64,
    pub frames_sent: AtomicU64,
    pub snapshots_served: AtomicU64,
    pub bad_requests: AtomicU64,
    pub pings_sent: AtomicU64,
    pub pong_timeouts: AtomicU64,
    pub source_errors: AtomicU64,
}

impl Counters {
    /// A copy of the counters as they are now.
    pub fn snapshot(&self) -> FeedServerStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FeedServerStats {
            connections: get(&self.connections),
            sessions: get(&self.sessions),
            sessions_completed: get(&self.sessions_completed),
            frames_sent: get(&self.frames_sent),
            snapshots_served: get(&self.snapshots_served),
            bad_requests: get(&self.bad_requests),
            pings_sent: get(&self.pings_sent),
            pong_timeouts: get(&self.pong_timeouts),
            source_errors: get(&self.source_errors),
        }
    }
}

/// A copy of the server's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeedServerStats {
    /// TCP connections accepted.
    pub connections: u64,
    /// WebSocket sessions opened.
    pub sessions: u64,
    /// Sessions that reached the end of the source and closed it.
    pub sessions_completed: u64,
    /// Frames sent, over all sessions.
    pub frames_sent: u64,
    /// REST snapshots served.
    pub snapshots_served: u64,
    /// Requests answered with an error (bad head, unknown path, unknown symbol).
    pub bad_requests: u64,
    /// Pings sent.
    pub pings_sent: u64,
    /// Sessions ended because a ping went unanswered.
    pub pong_timeouts: u64,
    /// Records the source could not read (skipped), or failures to open it.
    pub source_errors: u64,
}

/// What every connection thread shares.
pub(crate) struct Shared {
    pub config: FeedConfig,
    pub open: Box<SourceOpener>,
    pub snapshots: SnapshotTable,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub stop: AtomicBool,
    pub counters: Counters,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("snapshots", &self.snapshots.len())
            .field("tls", &self.tls.is_some())
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}
