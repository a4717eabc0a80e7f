//! `pinion-exchange-sim`: the exchange simulator's market-stream server as a process.
//!
//! Serves a recording (`--input FILE`, any format `pinion_feed::source::open` reads) or the
//! synthetic market (`--synthetic`) on a loopback port, Binance-style, plaintext or TLS
//! (`--tls`): WebSocket streams at `/stream?streams=…` and `/ws/<stream>`, REST snapshots at
//! `/api/v3/depth?symbol=…`. Prints `listening <addr>` on stdout once it accepts connections
//! (scripts read the port from it when `--listen` asks for port 0), then serves until killed.
//!
//! `pinion-exchange-sim live …` runs the live exchange model instead (one shared market that
//! clients join mid-stream; see `pinion_exchange_sim::live`): `--input FILE | --synthetic
//! [--symbols N]`, `--listen`, `--tls --cert-out PEM`, `--speed X | --rate N`, `--faults SPEC`,
//! `--seed N`, `--venue spot|usdm|coinm`, and the WS API (order entry at `/ws-api/v3`):
//! `--ws-api-key K [--ws-api-ed25519-pub PEM] [--ws-api-hmac-secret S] [--ws-api-balance
//! ASSET=AMOUNT]… [--ws-api-maker-commission R] [--ws-api-taker-commission R] [--order-faults
//! SPEC] [--ws-api-key-withdrawals] [--ws-api-key-no-ip-restrict]` (the last two shape what
//! `GET /sapi/v1/account/apiRestrictions` says of the key). It prints `listening <addr>` the
//! same way.
//!
//! `pinion-exchange-sim bot-api [--listen ADDR] [--token-env VAR] [--cert-out PEM]` runs the
//! fake Telegram Bot API over TLS (see `pinion_exchange_sim::botapi`) for the operator bot.
//!
//! Two helper commands make a loopback capture check possible without other tools
//! (`scripts/capture-loopback.sh`): `receive` is a client that reads one whole session, and
//! `compare` checks that a capture's replayed frames are the source's, byte for byte.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use pinion_core::ConnId;
use pinion_exchange_sim::loopback::{compare_frames, fetch_snapshot, receive_session};
use pinion_exchange_sim::wsapi::ed25519_public_key_from_pem;
use pinion_exchange_sim::{
    BotApiConfig, BotApiFake, Dec, FaultPlan, FeedConfig, FeedServer, LiveConfig, LiveExchange,
    LivePacing, LiveVenue, MergedSource, OrderFaultPlan, Pacing, SelfSignedTls, WsApiConfig,
};
use pinion_feed::source::pcap::{CaptureFilter, PcapConfig, PcapSource};
use pinion_feed::synth::{SynthConfig, SynthMarket};
use pinion_feed::{FrameSource, SourceError};

/// Binance market-stream simulator serving a recording or a synthetic market on loopback.
#[derive(Debug, Parser)]
#[command(
    name = "pinion-exchange-sim",
    version,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Check>,
    #[command(flatten)]
    serve: Args,
}

/// The live exchange, and helpers for checking the simulator's traffic.
#[derive(Debug, clap::Subcommand)]
enum Check {
    /// Run the live exchange model: one shared market that clients join, subscribe to,
    /// snapshot over REST and meet faults on.
    Live(Box<LiveArgs>),
    /// Run the fake Telegram Bot API over TLS (`getUpdates`, `sendMessage`, and the test
    /// controls `/fake/inject`, `/fake/press`, `/fake/sent`, `/fake/down`).
    BotApi {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// The environment variable holding the bot token the fake accepts.
        #[arg(long, default_value = "PINION_BOT_TOKEN")]
        token_env: String,
        /// Write the certificate (PEM) clients must trust here.
        #[arg(long)]
        cert_out: Option<PathBuf>,
    },
    /// Read one whole session as a client; print how many frames came and the close code.
    Receive {
        /// The simulator's address.
        #[arg(long)]
        addr: SocketAddr,
        /// The stream path and query.
        #[arg(long, default_value = "/stream")]
        path: String,
        /// Also fetch this symbol's REST snapshot (after opening the stream, as Binance
        /// prescribes) and write it to `--snapshot-out`.
        #[arg(long, requires = "snapshot_out")]
        snapshot: Option<String>,
        /// Where the snapshot body goes.
        #[arg(long)]
        snapshot_out: Option<PathBuf>,
    },
    /// Make an Ed25519 key pair for the WS API: the private key as PKCS#8 PEM (what pinion
    /// signs with) and the public key as PEM (what `live --ws-api-ed25519-pub` checks).
    Keygen {
        /// Where the private key goes (written owner-only).
        #[arg(long)]
        private_out: PathBuf,
        /// Where the public key goes.
        #[arg(long)]
        public_out: PathBuf,
    },
    /// Replay a capture and compare its frames with the source's; exit 1 when they differ.
    Compare {
        /// The recording the simulator served.
        #[arg(long)]
        input: PathBuf,
        /// The capture (.pcap or .pcapng).
        #[arg(long)]
        capture: PathBuf,
        /// Only connections on this TCP port.
        #[arg(long)]
        port: Option<u16>,
        /// Only this connection id of the recording.
        #[arg(long)]
        connection: Option<u16>,
    },
}

/// Serving settings.
#[derive(Debug, clap::Args)]
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
    /// Serve over TLS (`wss://`, `https://`) with a fresh self-signed certificate for
    /// `localhost` and `127.0.0.1`.
    #[arg(long)]
    tls: bool,
    /// Write the certificate (PEM) clients must trust here.
    #[arg(long, requires = "tls")]
    cert_out: Option<PathBuf>,
}

/// Settings of the live exchange.
#[derive(Debug, clap::Args)]
struct LiveArgs {
    /// Recording to serve (.hbt.gz, .cryptofeed.ws, .cryptofeed.jsonl.zst).
    #[arg(
        long,
        conflicts_with = "synthetic",
        required_unless_present = "synthetic"
    )]
    input: Option<PathBuf>,
    /// Serve the deterministic synthetic market instead of a recording.
    #[arg(long)]
    synthetic: bool,
    /// Symbols of the synthetic market (BTCUSDT, ETHUSDT, … then SYN<i>USDT).
    #[arg(long, default_value_t = 1)]
    symbols: usize,
    /// Frames each synthetic symbol generates.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9443")]
    listen: SocketAddr,
    /// The market played: spot, usdm or coinm (limits and defaults).
    #[arg(long, default_value = "spot")]
    venue: String,
    /// Serve over TLS with a fresh self-signed certificate for localhost and 127.0.0.1.
    #[arg(long)]
    tls: bool,
    /// Write the certificate (PEM) clients must trust here.
    #[arg(long, requires = "tls")]
    cert_out: Option<PathBuf>,
    /// Release frames at the recorded pace times this factor.
    #[arg(long, conflicts_with = "rate")]
    speed: Option<f64>,
    /// Release this many frames per second (without --speed or --rate: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Faults to inject, e.g. `drop:btcusdt@depth@100ms:37#0,rst:500,shutdown:2000`.
    #[arg(long, default_value = "")]
    faults: String,
    /// Seed of the random faults (and of the synthetic market, when given).
    #[arg(long)]
    seed: Option<u64>,
    /// Milliseconds between server pings (0 = none; default: the venue's).
    #[arg(long)]
    ping_interval_ms: Option<u64>,
    /// REST weight budget per IP per minute (default: the venue's).
    #[arg(long)]
    weight_limit: Option<u64>,
    /// Streams per connection (default: the venue's).
    #[arg(long)]
    max_streams: Option<usize>,
    /// Frames a session may fall behind before it is dropped.
    #[arg(long)]
    session_queue: Option<usize>,
    /// Serve SBE on every stream path, as stream-sbe.binance.com (Spot only; without it only
    /// the paths under /sbe serve SBE).
    #[arg(long)]
    sbe_streams: bool,
    /// Serve the WS API (order entry) at `/ws-api/v3` for this API key.
    #[arg(long)]
    ws_api_key: Option<String>,
    /// The Ed25519 public key (`-----BEGIN PUBLIC KEY-----` PEM file) `session.logon` checks.
    #[arg(long, requires = "ws_api_key")]
    ws_api_ed25519_pub: Option<PathBuf>,
    /// The HMAC secret per-request signatures are checked against.
    #[arg(long, requires = "ws_api_key")]
    ws_api_hmac_secret: Option<String>,
    /// A start balance `ASSET=AMOUNT` (repeatable).
    #[arg(long, requires = "ws_api_key")]
    ws_api_balance: Vec<String>,
    /// Commission rate of maker fills, e.g. `0.001` (charged in the asset received).
    #[arg(long, requires = "ws_api_key", default_value = "0")]
    ws_api_maker_commission: String,
    /// Commission rate of taker fills, e.g. `0.001` (charged in the asset received).
    #[arg(long, requires = "ws_api_key", default_value = "0")]
    ws_api_taker_commission: String,
    /// Order-path faults, e.g. `o1007:3,oreset:5,fillfirst`.
    #[arg(long, requires = "ws_api_key", default_value = "")]
    order_faults: String,
    /// The key's `apiRestrictions` say it can withdraw (`enableWithdrawals`).
    #[arg(long, requires = "ws_api_key")]
    ws_api_key_withdrawals: bool,
    /// The key's `apiRestrictions` say it is bound to no IP address (`ipRestrict` false).
    #[arg(long, requires = "ws_api_key")]
    ws_api_key_no_ip_restrict: bool,
}

/// `keygen`: an Ed25519 pair, the private half readable by its owner only.
fn keygen(private_out: &Path, public_out: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).context("generating the key")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(private_out)
        .with_context(|| format!("creating {}", private_out.display()))?;
    file.write_all(key.serialize_pem().as_bytes())
        .with_context(|| format!("writing {}", private_out.display()))?;
    std::fs::write(public_out, key.public_key_pem())
        .with_context(|| format!("writing {}", public_out.display()))?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve),
        Some(Check::Live(args)) => live(*args),
        Some(Check::BotApi {
            listen,
            token_env,
            cert_out,
        }) => bot_api(listen, &token_env, cert_out.as_deref()),
        Some(Check::Keygen {
            private_out,
            public_out,
        }) => keygen(&private_out, &public_out),
        Some(Check::Receive {
            addr,
            path,
            snapshot,
            snapshot_out,
        }) => receive(addr, &path, snapshot.zip(snapshot_out)),
        Some(Check::Compare {
            input,
            capture,
            port,
            connection,
        }) => compare(&input, &capture, port, connection.map(ConnId)),
    }
}

fn bot_api(listen: SocketAddr, token_env: &str, cert_out: Option<&Path>) -> anyhow::Result<()> {
    // The token is read from the environment, never from the command line (where `ps` shows
    // it), and never printed.
    let token = std::env::var(token_env)
        .with_context(|| format!("the bot token: environment variable {token_env} is not set"))?;
    let tls =
        SelfSignedTls::generate(&["localhost", "127.0.0.1"]).context("self-signed certificate")?;
    if let Some(out) = cert_out {
        std::fs::write(out, &tls.certificate_pem)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    let fake = BotApiFake::start(listen, BotApiConfig::new(&token), tls.server_config)
        .context("starting the bot API fake")?;
    println!("listening {}", fake.local_addr());
    std::io::stdout().flush().context("stdout")?;
    fake.wait();
    Ok(())
}

fn receive(
    addr: SocketAddr,
    path: &str,
    snapshot: Option<(String, PathBuf)>,
) -> anyhow::Result<()> {
    let url = format!("ws://{addr}{path}");
    // Open the stream first; the session runs on its own thread while the snapshot is fetched.
    let session = std::thread::spawn(move || receive_session(&url));
    if let Some((symbol, out)) = snapshot {
        let body = fetch_snapshot(addr, &symbol).context("fetching the snapshot")?;
        std::fs::write(&out, body).with_context(|| format!("writing {}", out.display()))?;
    }
    let session = session
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))?
        .context("websocket session")?;
    println!(
        "received {} frames, close code {}",
        session.frames.len(),
        session
            .close_code
            .map_or("none".to_owned(), |c| c.to_string())
    );
    Ok(())
}

fn compare(
    input: &std::path::Path,
    capture: &std::path::Path,
    port: Option<u16>,
    connection: Option<ConnId>,
) -> anyhow::Result<()> {
    let mut source =
        pinion_feed::source::open(input).with_context(|| format!("opening {}", input.display()))?;
    let config = PcapConfig {
        filter: CaptureFilter {
            ports: port.into_iter().collect(),
            ..CaptureFilter::default()
        },
        ..PcapConfig::default()
    };
    let mut replay = PcapSource::open(capture, config)
        .with_context(|| format!("opening {}", capture.display()))?;
    let result = compare_frames(source.as_mut(), connection, &mut replay)?;
    println!(
        "source frames {}, capture frames {}, serverShutdown {}, capture stats {:?}",
        result.source_frames,
        result.capture_frames,
        result.shutdown_notice,
        replay.stats()
    );
    match result.first_difference {
        None if result.is_exact() => {
            println!("capture matches the source byte for byte");
            Ok(())
        }
        first => bail!("capture differs from the source (first difference at frame {first:?})"),
    }
}

/// Synthetic symbol names: familiar ones first.
fn synthetic_symbol(i: usize) -> String {
    const NAMES: [&str; 5] = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"];
    NAMES
        .get(i)
        .map_or_else(|| format!("SYN{i}USDT"), |n| (*n).to_owned())
}

fn live(args: LiveArgs) -> anyhow::Result<()> {
    let venue = match args.venue.as_str() {
        "spot" => LiveVenue::Spot,
        "usdm" => LiveVenue::UsdM,
        "coinm" => LiveVenue::CoinM,
        other => bail!("--venue must be spot, usdm or coinm, got {other}"),
    };
    let mut config = LiveConfig::for_venue(venue);
    config.pacing = match (args.speed, args.rate) {
        (Some(speed), _) => LivePacing::Recorded { speed },
        (None, Some(frames_per_sec)) => LivePacing::Rate { frames_per_sec },
        (None, None) => LivePacing::AsFastAsPossible,
    };
    let seed = args.seed.unwrap_or(0);
    config.faults = FaultPlan::parse(&args.faults, seed).context("--faults")?;
    if let Some(ms) = args.ping_interval_ms {
        config.ping_interval = (ms > 0).then(|| Duration::from_millis(ms));
    }
    if let Some(w) = args.weight_limit {
        config.weight_limit = w;
    }
    if let Some(m) = args.max_streams {
        config.max_streams = m;
    }
    if let Some(q) = args.session_queue {
        config.session_queue = q;
    }
    config.sbe_streams = args.sbe_streams;
    if let Some(key) = &args.ws_api_key {
        let mut api = WsApiConfig::new(key);
        if let Some(path) = &args.ws_api_ed25519_pub {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            api.ed25519_public_key =
                Some(ed25519_public_key_from_pem(&pem).context("--ws-api-ed25519-pub")?);
        }
        api.hmac_secret = args.ws_api_hmac_secret.clone();
        for item in &args.ws_api_balance {
            let Some((asset, amount)) = item.split_once('=') else {
                bail!("--ws-api-balance wants ASSET=AMOUNT, got {item}");
            };
            Dec::parse(amount).with_context(|| format!("--ws-api-balance {item}"))?;
            api.balances.push((asset.to_owned(), amount.to_owned()));
        }
        api.maker_commission =
            Dec::parse(&args.ws_api_maker_commission).context("--ws-api-maker-commission")?;
        api.taker_commission =
            Dec::parse(&args.ws_api_taker_commission).context("--ws-api-taker-commission")?;
        api.faults = OrderFaultPlan::parse(&args.order_faults).context("--order-faults")?;
        api.key.enable_withdrawals = args.ws_api_key_withdrawals;
        api.key.ip_restrict = !args.ws_api_key_no_ip_restrict;
        config.ws_api = Some(api);
    }
    let tls = if args.tls {
        let tls = SelfSignedTls::generate(&["localhost", "127.0.0.1"])
            .context("self-signed certificate")?;
        if let Some(out) = &args.cert_out {
            std::fs::write(out, &tls.certificate_pem)
                .with_context(|| format!("writing {}", out.display()))?;
        }
        Some(tls.server_config)
    } else {
        None
    };
    let (exchange, what) = if let Some(path) = args.input {
        let shown = path.display().to_string();
        let exchange = LiveExchange::start(args.listen, config, tls, move || {
            pinion_feed::source::open(&path)
        });
        (exchange, shown)
    } else {
        if args.symbols == 0 {
            bail!("--symbols must be at least 1");
        }
        let configs: Vec<SynthConfig> = (0..args.symbols)
            .map(|i| {
                let mut c = SynthConfig {
                    messages: args.messages,
                    symbol: synthetic_symbol(i),
                    ..SynthConfig::default()
                };
                c.seed = args.seed.map_or(c.seed, |s| s) ^ (i as u64).wrapping_mul(0x9E37_79B9);
                c
            })
            .collect();
        for c in &configs {
            SynthMarket::new(c.clone()).context("synthetic market config")?;
        }
        let exchange = LiveExchange::start(args.listen, config, tls, move || {
            let mut sources: Vec<Box<dyn FrameSource + Send>> = Vec::new();
            for c in &configs {
                let market = SynthMarket::new(c.clone()).map_err(|e| SourceError::Format {
                    format: "synthetic",
                    position: 0,
                    what: e.to_string(),
                })?;
                sources.push(Box::new(market));
            }
            Ok(Box::new(MergedSource::new(sources)) as Box<dyn FrameSource + Send>)
        });
        (exchange, format!("{} synthetic symbol(s)", args.symbols))
    };
    let exchange = exchange.with_context(|| format!("serving {what}"))?;
    let addr = exchange.local_addr();
    let (ws, http) = if args.tls {
        ("wss", "https")
    } else {
        ("ws", "http")
    };
    // One write: a reader that takes the first line and goes away must not end the server.
    let banner = format!(
        "listening {addr}\nlive market of {what}: {ws}://{addr}/stream  \
         {http}://{addr}/api/v3/depth?symbol=…  {http}://{addr}/sim/stats\n"
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    drop(out);
    exchange.wait();
    Ok(())
}

fn serve(args: Args) -> anyhow::Result<()> {
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

    type Opener =
        Box<dyn Fn() -> Result<Box<dyn FrameSource + Send>, SourceError> + Send + Sync + 'static>;
    let (open, what): (Opener, String) = if let Some(path) = args.input {
        let shown = path.display().to_string();
        (Box::new(move || pinion_feed::source::open(&path)), shown)
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
        let open = move || {
            let market = SynthMarket::new(synth.clone()).map_err(|e| SourceError::Format {
                format: "synthetic",
                position: 0,
                what: e.to_string(),
            })?;
            Ok(Box::new(market) as Box<dyn FrameSource + Send>)
        };
        (Box::new(open), "the synthetic market".to_owned())
    };
    let (server, scheme) = if args.tls {
        let tls = SelfSignedTls::generate(&["localhost", "127.0.0.1"])
            .context("self-signed certificate")?;
        if let Some(out) = &args.cert_out {
            std::fs::write(out, &tls.certificate_pem)
                .with_context(|| format!("writing {}", out.display()))?;
        }
        let server = FeedServer::start_tls(args.listen, config, tls.server_config, open);
        (server, ("wss", "https"))
    } else {
        (FeedServer::start(args.listen, config, open), ("ws", "http"))
    };
    let server = server.with_context(|| format!("serving {what}"))?;

    let addr = server.local_addr();
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {addr}")?;
    writeln!(
        out,
        "streams: {}://{addr}/stream?streams=…  snapshots ({}): {}://{addr}/api/v3/depth?symbol=…",
        scheme.0,
        server.snapshot_count(),
        scheme.1
    )?;
    out.flush()?;
    drop(out);
    server.wait();
    Ok(())
}
