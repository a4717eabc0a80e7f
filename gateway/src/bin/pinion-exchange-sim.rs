//! `pinion-exchange-sim`: the exchange simulator's market-stream server as a process.
//!
//! Serves a recording (`--input FILE`, any format `pinion_feed::source::open` reads) or the
//! synthetic market (`--synthetic`) on a loopback port, Binance-style: WebSocket streams at
//! `/stream?streams=…` and `/ws/<stream>`, REST snapshots at `/api/v3/depth?symbol=…`. Prints
//! `listening <addr>` on stdout once it accepts connections (scripts read the port from it when
//! `--listen` asks for port 0), then serves until killed.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use pinion_feed::synth::{SynthConfig, SynthMarket};
use pinion_feed::{ConnId, FrameSource, SourceError};
use pinion_gateway::exchange_sim::{FeedConfig, FeedServer, Pacing};

/// Binance market-stream simulator serving a recording or a synthetic market on loopback.
#[derive(Debug, Parser)]
#[command(name = "pinion-exchange-sim", version)]
struct Args {
    /// Recording or capture to serve (.hbt.gz, .cryptofeed.ws, .cryptofeed.jsonl.zst).
    #[arg(
        long,
        conflicts_with = "synthetic",
        required_unless_present = "synthetic"
    )]
    input: Option<PathBuf>,
    /// Serve the deterministic synthetic BTCUSDT market instead of a recording.
    #[arg(long)]
    synthetic: bool,
    /// Frames the synthetic market generates.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Seed of the synthetic market.
    #[arg(long)]
    seed: Option<u64>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9443")]
    listen: SocketAddr,
    /// Replay at the recorded pace times this factor; without it, as fast as the client reads.
    #[arg(long)]
    speed: Option<f64>,
    /// Serve only the frames of this connection id of the source.
    #[arg(long)]
    connection: Option<u16>,
    /// Send at most this many frames per session.
    #[arg(long)]
    limit: Option<u64>,
    /// Seconds between server pings (0 = no pings).
    #[arg(long, default_value_t = 20)]
    ping_interval: u64,
    /// Seconds a ping may stay unanswered before the session is dropped.
    #[arg(long, default_value_t = 60)]
    pong_timeout: u64,
    /// Do not send `serverShutdown` before closing at the end of the source.
    #[arg(long)]
    no_shutdown_notice: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pacing = match args.speed {
        None => Pacing::AsFastAsPossible,
        Some(speed) if speed.is_finite() && speed > 0.0 => Pacing::Recorded { speed },
        Some(speed) => bail!("--speed must be a positive number, got {speed}"),
    };
    let config = FeedConfig {
        connection: args.connection.map(ConnId),
        pacing,
        ping_interval: (args.ping_interval > 0).then(|| Duration::from_secs(args.ping_interval)),
        pong_timeout: Duration::from_secs(args.pong_timeout),
        shutdown_notice: !args.no_shutdown_notice,
        max_frames: args.limit,
        ..FeedConfig::default()
    };

    let server = if let Some(path) = args.input {
        let shown = path.display().to_string();
        FeedServer::start(args.listen, config, move || {
            pinion_feed::source::open(&path)
        })
        .with_context(|| format!("serving {shown}"))?
    } else {
        let mut synth = SynthConfig {
            messages: args.messages,
            ..SynthConfig::default()
        };
        if let Some(seed) = args.seed {
            synth.seed = seed;
        }
        // Check the config once here, so the per-session opener cannot fail on it.
        SynthMarket::new(synth.clone()).context("synthetic market config")?;
        FeedServer::start(args.listen, config, move || {
            let market = SynthMarket::new(synth.clone()).map_err(|e| SourceError::Format {
                format: "synthetic",
                position: 0,
                what: e.to_string(),
            })?;
            Ok(Box::new(market) as Box<dyn FrameSource + Send>)
        })
        .context("serving the synthetic market")?
    };

    let addr = server.local_addr();
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {addr}")?;
    writeln!(
        out,
        "streams: ws://{addr}/stream?streams=…  snapshots ({}): http://{addr}/api/v3/depth?symbol=…",
        server.snapshot_count()
    )?;
    out.flush()?;
    drop(out);
    server.wait();
    Ok(())
}
