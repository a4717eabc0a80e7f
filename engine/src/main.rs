//! The `pinion` command: parses the command line, loads and validates the config, and hands
//! the typed settings to the library. The only place `anyhow` is used.
//!
//! `pinion replay`'s exit codes are listed in its `--help` and the README: 0 clean, 1 could not
//! run, 2 usage, [`EXIT_DAMAGED`] damaged input, [`EXIT_INTERRUPTED`] after Ctrl-C.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;

use pinion_engine::cli::{
    BacktestArgs, BookArgs, Cli, Command, ConfigArgs, ConfigSource, ConvertArgs, HistoryArgs,
    HistoryQuery, JitterArgs, LiveArgs,
};
use pinion_engine::config::{
    Config, HISTORY_POSTGRES_SECRET, Overrides, REPLAY_TOML, REPLAY_TOML_NAME, Settings,
};
use pinion_engine::host::jitter;
use pinion_engine::ops::history::{HistoryWriter, PgTarget, RunBatch, pg, query};
use pinion_engine::ops::{events, log};
use pinion_engine::pipeline::{self, Console, DumpPoints};
use pinion_engine::runtime::placement::{PinOutcome, allowed_cores};
use pinion_engine::runtime::{self, clock};
use pinion_feed::sbe::Template;

/// The input was damaged or a book did not end synced (and `--allow-damaged` was not given).
const EXIT_DAMAGED: u8 = 3;
/// `pinion live --trade`: the start-up checks refused the order key (one that can withdraw,
/// without `--allow-withdrawal-key`; an account or key that cannot trade). Restarting cannot
/// help, so the systemd unit does not restart on it.
const EXIT_KEY_REFUSED: u8 = 4;
/// Stopped by Ctrl-C: 128 + SIGINT, as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pinion: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay(args) => {
            let (config, origin) = parse(&args.source, &args.overrides())?;
            args.check_conflicts(&config)?;
            replay(config.validate(&origin)?)
        }
        Command::Backtest(args) => backtest(&args),
        Command::Live(args) => live(&args),
        Command::Convert(args) => {
            let settings = load(
                &ConfigSource {
                    config: None,
                    set: Vec::new(),
                },
                &Overrides::default(),
            )?;
            convert(&settings, &args)
        }
        Command::Book(args) => {
            let settings = load(&args.source, &args.overrides())?;
            book(&settings, &args)
        }
        Command::Config(args) => config(&args),
        Command::Jitter(args) => jitter(&args),
        Command::History(args) => history_command(&args),
    }
}

/// Starts the structured log as the config's `[log]` and `PINION_LOG` say.
fn start_log(settings: &Settings) -> anyhow::Result<log::Logger> {
    let s = settings
        .log
        .clone()
        .with_env()
        .map_err(anyhow::Error::msg)?;
    Ok(log::init(&s)?)
}

/// Writes out what the log still holds and says what it could not keep.
fn end_log(logger: log::Logger) {
    let s = logger.finish();
    if s.dropped > 0 {
        eprintln!(
            "pinion: {} log records dropped (the log ring was full: log.capacity)",
            s.dropped
        );
    }
    if s.write_errors > 0 {
        eprintln!(
            "pinion: {} log records could not be written",
            s.write_errors
        );
    }
}

/// Opens the history file the settings name, before the run, so a bad path fails at once;
/// with `[history] postgres`, its shared copy (whose connection string is a secret, read here).
fn start_history(settings: &Settings) -> anyhow::Result<Option<HistoryWriter>> {
    let Some(path) = settings.history.as_deref() else {
        return Ok(None);
    };
    let postgres = match &settings.history_postgres {
        Some(pg) => {
            let secret = HISTORY_POSTGRES_SECRET;
            let connection = pinion_engine::secrets::read_secret(secret)
                .with_context(|| format!("history.postgres: the connection string ({secret})"))?;
            let roots = pinion_engine::pipeline::roots_for(
                "history.postgres_ca_file",
                pg.ca_file.as_deref(),
            )?;
            let tls = pg::tls_config(roots).map_err(anyhow::Error::msg)?;
            let target = PgTarget::new(
                &connection,
                tls,
                pg.source.clone(),
                pg.retry,
                pg.flush_within,
            )
            .map_err(|e| anyhow::anyhow!("history.postgres ({secret}): {e}"))?;
            Some(target)
        }
        None => None,
    };
    HistoryWriter::start_with(path, postgres)
        .map(Some)
        .context("opening the trade history")
}

/// Writes `batch` with `writer` and says what it added.
fn write_history(writer: HistoryWriter, batch: RunBatch) -> anyhow::Result<()> {
    write_history_as(writer, batch, false)
}

/// [`write_history`]; `streamed`: `batch` completes the run the session streamed.
fn write_history_as(writer: HistoryWriter, batch: RunBatch, streamed: bool) -> anyhow::Result<()> {
    let path = writer.path().to_path_buf();
    if streamed {
        writer.finish_stream(batch)?;
    } else {
        writer.send(batch)?;
    }
    let (written, copy) = writer.finish_all();
    if let Some(copy) = copy {
        eprintln!("history: {copy}");
    }
    for w in written? {
        eprintln!(
            "history: run {} ({} orders, {} fills, {} instrument-days) written to {}",
            w.run,
            w.orders,
            w.fills,
            w.days,
            path.display()
        );
    }
    Ok(())
}

fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Records the error of a run that failed in the log file, then hands it on (to stderr).
fn logged<T>(result: anyhow::Result<T>) -> anyhow::Result<T> {
    if let Err(e) = &result
        && log::to_file()
    {
        log::emit(
            log::Level::Error,
            "pinion::run",
            format!("{e:#}"),
            Vec::new(),
        );
    }
    result
}

/// `pinion history`: the fills or the PnL from a history file.
fn history_command(args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    if !args.db.exists() {
        anyhow::bail!("{}: no such history file", args.db.display());
    }
    let conn = query::open_read(&args.db)?;
    let mut text = String::new();
    match &args.query {
        HistoryQuery::Fills {
            from,
            to,
            instrument,
            csv,
        } => {
            let filter = query::FillFilter {
                from_ns: *from,
                to_ns: *to,
                symbol: instrument.clone(),
            };
            let rows = query::fills(&conn, &args.db, &filter)?;
            if *csv {
                text.push_str(&query::csv_line(&query::FILL_COLUMNS));
                for r in &rows {
                    text.push_str(&query::csv_line(r));
                }
            } else {
                let rows: Vec<Vec<&str>> = rows
                    .iter()
                    .map(|r| r.iter().map(String::as_str).collect())
                    .collect();
                text = query::table(&query::FILL_COLUMNS, &rows);
            }
        }
        HistoryQuery::Pnl { by, csv } => {
            let rows = query::pnl(&conn, &args.db, *by)?;
            let header = query::pnl_columns(*by);
            let cells: Vec<Vec<String>> = rows.iter().map(query::PnlRow::cells).collect();
            if *csv {
                text.push_str(&query::csv_line(&header));
                for r in &cells {
                    text.push_str(&query::csv_line(r));
                }
            } else {
                text = query::table(&header, &cells);
            }
        }
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn jitter(args: &JitterArgs) -> anyhow::Result<ExitCode> {
    if !(args.seconds.is_finite() && (0.1..=3600.0).contains(&args.seconds)) {
        anyhow::bail!("--seconds must be from 0.1 to 3600, not {}", args.seconds);
    }
    if !(1..=jitter::MAX_MIN_GAP_NS).contains(&args.min_gap_ns) {
        anyhow::bail!(
            "--min-gap-ns must be from 1 to {} (the table starts at 2 µs), not {}",
            jitter::MAX_MIN_GAP_NS,
            args.min_gap_ns
        );
    }
    let allowed = allowed_cores();
    let cores = args.cores.clone().unwrap_or_else(|| allowed.clone());
    if cores.is_empty() {
        anyhow::bail!(
            "no cores to measure: the allowed cores could not be read; name them with --cores"
        );
    }
    // Two threads on one core would each report the other's time slices as host stalls.
    let mut distinct = cores.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != cores.len() {
        anyhow::bail!("--cores names a core twice: {cores:?}");
    }
    clock::start();
    println!(
        "jitter: {} thread(s) reading the clock ({}) for {:.1} s; gaps of {} ns or more are stalls",
        cores.len(),
        clock::source_name(),
        args.seconds,
        args.min_gap_ns
    );
    let reports = jitter::measure(
        &cores,
        &allowed,
        Duration::from_secs_f64(args.seconds),
        args.min_gap_ns,
    );
    print!("{}", jitter::table(&reports));
    let all_pinned = reports
        .iter()
        .all(|r| r.error.is_none() && r.pin == PinOutcome::Pinned);
    Ok(if all_pinned {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Reads the config named on the command line (or the embedded one), applies the overrides and
/// validates it; every problem is printed at once.
fn load(source: &ConfigSource, overrides: &Overrides) -> anyhow::Result<Settings> {
    let (config, origin) = parse(source, overrides)?;
    Ok(config.validate(&origin)?)
}

/// Reads the config named on the command line (or the embedded one) and applies the
/// overrides; returns it with the name it is reported under.
fn parse(source: &ConfigSource, overrides: &Overrides) -> anyhow::Result<(Config, String)> {
    let (text, origin) = match &source.config {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?,
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        ),
        None => (REPLAY_TOML.to_owned(), REPLAY_TOML_NAME.to_owned()),
    };
    let config = Config::parse_with(&text, &origin, overrides)?;
    Ok((config, origin))
}

fn config(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    if args.show {
        print!("{REPLAY_TOML}");
        return Ok(ExitCode::SUCCESS);
    }
    let settings = load(&args.source, &Overrides(args.source.set.clone()))?;
    println!(
        "{}: ok (input {:?}, placement {}, pacing {})",
        settings.origin,
        settings.input,
        settings.placement.label,
        settings.pacing.describe()
    );
    if let Some(live) = &settings.live {
        let spec = &live.spec;
        println!(
            "  [live] for `pinion live`: {} {} via {} ({} streams a symbol: {}), snapshots from {}",
            spec.venue,
            spec.symbols.join(","),
            spec.ws_url,
            spec.streams.len(),
            spec.streams.join(","),
            spec.rest_url
        );
        if let Some(o) = &live.orders {
            println!(
                "  [live.orders] for `pinion live --trade`: {} with a {:?} key from ${} (secret from ${}), \
                 recvWindow {}, open orders at start: {:?}, on exit: {}",
                o.ws_api_url,
                o.credentials.kind,
                o.credentials.api_key_env,
                o.credentials.secret_env,
                o.recv_window.map_or_else(
                    || "the venue's default".to_owned(),
                    |w| format!("{} ms", w.as_micros() as f64 / 1000.0)
                ),
                o.open_orders,
                settings.exit
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn replay(settings: Settings) -> anyhow::Result<ExitCode> {
    let logger = start_log(&settings)?;
    let code = logged(replay_logged(settings));
    end_log(logger);
    code
}

fn replay_logged(mut settings: Settings) -> anyhow::Result<ExitCode> {
    let history = start_history(&settings)?;
    if history.is_some() {
        // The fills reach the history from the strategy stage's tape, kept only when asked.
        settings.backtest.record = true;
    }
    events::started("replay", &settings);
    let started = unix_now_ns();
    let stop = Arc::new(AtomicBool::new(false));
    // Ctrl-C asks the feed to end the stream; the marker then drains every stage, so the report
    // still comes out. A second Ctrl-C while draining exits at once.
    runtime::stop_on_ctrl_c(&stop).context("installing the Ctrl-C handler")?;
    let report = pipeline::run(&settings, Arc::clone(&stop), Console::INTERACTIVE)?;
    events::ended("replay", &report);
    print!("{}", report.table());
    if let Some(writer) = history {
        let bt = pinion_engine::backtest::BacktestReport::new(&report, &settings.backtest);
        let batch = RunBatch::new(
            "replay",
            started,
            &report.origin,
            &report.input.description,
            &bt,
        );
        write_history(writer, batch)?;
    }
    // Ctrl-C, even one that came after the input had ended, says the user cut the run short.
    let code = if report.stopped_early() || stop.load(std::sync::atomic::Ordering::Relaxed) {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if report.damage().is_damaged() && !settings.report.allow_damaged {
        eprintln!(
            "pinion: the input was damaged ({}); exit code {EXIT_DAMAGED} (--allow-damaged accepts it)",
            report.damage().reasons.join("; ")
        );
        ExitCode::from(EXIT_DAMAGED)
    } else {
        ExitCode::SUCCESS
    };
    if let Some(path) = &settings.report.json {
        report
            .write_json(path)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    if let Some(dir) = &settings.report.hgrm_dir {
        let files = report
            .write_hgrm(dir)
            .with_context(|| format!("writing .hgrm files into {}", dir.display()))?;
        eprintln!("{} .hgrm files written to {}", files.len(), dir.display());
    }
    if let Some((path, Ok(n))) = &report.errors_out {
        eprintln!("{n} problems written to {}", path.display());
    }
    Ok(code)
}

/// `pinion backtest`: the replay on the simulated venue, measured, and its files.
fn backtest(args: &BacktestArgs) -> anyhow::Result<ExitCode> {
    if !args.sweep.is_empty() {
        if args.history.is_some() {
            anyhow::bail!(
                "--history cannot go with --sweep: the sweep's runs are compared in its summary, \
                 not recorded one by one"
            );
        }
        return sweep(args);
    }
    let settings = load(&args.source, &args.overrides())?;
    let logger = start_log(&settings)?;
    let code = logged(backtest_logged(args, &settings));
    end_log(logger);
    code
}

fn backtest_logged(args: &BacktestArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let settings = settings.clone();
    let history = start_history(&settings)?;
    events::started("backtest", &settings);
    let started = unix_now_ns();
    let stop = Arc::new(AtomicBool::new(false));
    runtime::stop_on_ctrl_c(&stop).context("installing the Ctrl-C handler")?;
    let (report, bt) =
        pinion_engine::backtest::run(&settings, Arc::clone(&stop), Console::INTERACTIVE)?;
    events::ended("backtest", &report);
    print!("{}", report.table());
    println!();
    print!("{}", bt.table());
    if let Some(dir) = &args.out {
        let files = pinion_engine::backtest::write_all(dir, &bt, &report)?;
        eprintln!("{} files written to {}", files.len(), dir.display());
    }
    if let Some(writer) = history {
        let batch = RunBatch::new(
            "backtest",
            started,
            &report.origin,
            &report.input.description,
            &bt,
        );
        write_history(writer, batch)?;
    }
    Ok(
        if report.stopped_early() || stop.load(std::sync::atomic::Ordering::Relaxed) {
            ExitCode::from(EXIT_INTERRUPTED)
        } else if report.damage().is_damaged() && !settings.report.allow_damaged {
            eprintln!(
                "pinion: the input was damaged ({}); exit code {EXIT_DAMAGED} (--allow-damaged accepts it)",
                report.damage().reasons.join("; ")
            );
            ExitCode::from(EXIT_DAMAGED)
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// `pinion backtest --sweep`: every combination, checked first, then run in parallel.
fn sweep(args: &BacktestArgs) -> anyhow::Result<ExitCode> {
    use pinion_engine::backtest::sweep;
    use pinion_engine::config::Override;
    let mut runs = Vec::new();
    for combo in sweep::combinations(&args.sweep) {
        let mut o = args.overrides();
        // One thread per run: the runs themselves are the parallelism.
        o.push(Override::string("placement.mode", "1"));
        o.push(Override::string("placement.wait", "park"));
        o.push(Override::value("runtime.progress", false));
        let label: Vec<String> = combo
            .iter()
            .map(|c| format!("{}={}", c.key, c.value))
            .collect();
        o.0.extend(combo);
        let settings = load(&args.source, &o).with_context(|| label.join(" "))?;
        if let Some(db) = &settings.history {
            anyhow::bail!(
                "history.db = {:?} in the config cannot go with --sweep: the sweep's runs are \
                 compared in its summary, not recorded one by one",
                db.display().to_string()
            );
        }
        runs.push((label, settings));
    }
    let jobs = args.jobs.unwrap_or_else(|| allowed_cores().len()).max(1);
    eprintln!("pinion backtest: {} runs, {jobs} at once", runs.len());
    let stop = Arc::new(AtomicBool::new(false));
    runtime::stop_on_ctrl_c(&stop).context("installing the Ctrl-C handler")?;
    let decoded = if args.predecode {
        Some(predecode_for(&runs)?)
    } else {
        None
    };
    let rows = sweep::run(runs, jobs, &stop, decoded.as_ref());
    print!("{}", sweep::table(&rows));
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("sweep.csv");
        std::fs::write(&path, sweep::csv(&rows, &args.sweep))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("summary written to {}", path.display());
    }
    Ok(if rows.iter().all(|r| r.outcome.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--predecode`: the sweep's input decoded once, after checking every run decodes the same.
fn predecode_for(
    runs: &[(Vec<String>, Settings)],
) -> anyhow::Result<pinion_engine::pipeline::DecodedInput> {
    let Some((_, first)) = runs.first() else {
        anyhow::bail!("--predecode: the sweep has no run");
    };
    for (label, s) in runs {
        if s.input != first.input
            || s.instruments != first.instruments
            || s.instrument_sources != first.instrument_sources
            || s.max_records != first.max_records
        {
            anyhow::bail!(
                "--predecode: {} changes what the input decodes to (input, instruments or \
                 max_records), so the runs cannot share one decoding",
                label.join(" ")
            );
        }
    }
    let started = std::time::Instant::now();
    let decoded = pinion_engine::pipeline::predecode(first)?;
    eprintln!(
        "pinion backtest: input decoded once, {} messages ({} MiB) in {:.1} s",
        decoded.tape.len(),
        decoded.tape.bytes() >> 20,
        started.elapsed().as_secs_f64()
    );
    Ok(decoded)
}

/// `pinion live`: the config's `[live]` table through the whole pipeline until Ctrl-C or the
/// duration.
fn live(args: &LiveArgs) -> anyhow::Result<ExitCode> {
    if args.source.config.is_none() {
        anyhow::bail!(
            "pinion live needs --config FILE with a [live] table (see configs/live-*.toml)"
        );
    }
    let mut settings = load(&args.source, &args.overrides())?;
    if let Some(live) = settings.live.as_mut() {
        live.trade = args.trade;
    }
    let logger = start_log(&settings)?;
    let code = logged(live_logged(args, settings));
    end_log(logger);
    code
}

fn live_logged(args: &LiveArgs, mut settings: Settings) -> anyhow::Result<ExitCode> {
    let history = start_history(&settings)?;
    if history.is_some() {
        // The fills reach the history from the strategy stage's tape, kept only when asked.
        settings.backtest.record = true;
    }
    let (mut settings, duration) = pipeline::for_live(settings)?;
    events::started("live", &settings);
    // Before anything connects to trade: what the exchange says of the key decides whether
    // this session trades at all, and which commission it pays.
    let key_checks = match pipeline::check_order_key(&mut settings, args.allow_withdrawal_key) {
        Ok(k) => k,
        Err(pipeline::PipelineError::KeyRefused(why)) => {
            let message = format!("order key refused: {why}");
            if log::to_file() {
                log::emit(log::Level::Error, "pinion::keys", &*message, Vec::new());
            }
            eprintln!("pinion: {message}; exit code {EXIT_KEY_REFUSED}");
            return Ok(ExitCode::from(EXIT_KEY_REFUSED));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(k) = &key_checks {
        for line in k.lines() {
            if log::to_file() {
                let level = if line.starts_with("warning:") {
                    log::Level::Warn
                } else {
                    log::Level::Info
                };
                log::emit(level, "pinion::keys", &*line, Vec::new());
            }
            eprintln!("pinion: {line}");
        }
    }
    let started = unix_now_ns();
    let stop = Arc::new(AtomicBool::new(false));
    runtime::stop_on_ctrl_c(&stop).context("installing the Ctrl-C handler")?;
    let timer_stop = Arc::clone(&stop);
    if let Some(d) = duration {
        std::thread::Builder::new()
            .name("pinion-duration".into())
            .spawn(move || {
                std::thread::sleep(d);
                timer_stop.store(true, std::sync::atomic::Ordering::Relaxed);
            })
            .context("starting the duration timer")?;
    }
    // A trading session with a journal writes its history as the journal does.
    let stream = history
        .as_ref()
        .filter(|_| settings.journal.is_some() && settings.live.as_ref().is_some_and(|l| l.trade))
        .and_then(HistoryWriter::stream);
    let streamed = stream.is_some();
    let built = pipeline::build_streaming(&settings, Arc::clone(&stop), stream)?;
    // Connections and resyncs are logged as they happen, read from the feed's counters.
    let watch = built.input.live.clone().and_then(|live| {
        events::LiveWatch::start(live, built.sessions.clone(), &built.input.instruments)
    });
    let report = pipeline::run_pipeline(&settings, built, Arc::clone(&stop), Console::INTERACTIVE);
    if let Some(w) = watch {
        w.stop();
    }
    let mut report = report?;
    report.key_checks = key_checks;
    events::ended("live", &report);
    print!("{}", report.table());
    if let Some(path) = &args.books_out {
        let books = pipeline::final_books(&report);
        let text = serde_json::to_string_pretty(&books).context("serialising the books")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("books written to {}", path.display());
    }
    if let Some(path) = &settings.report.json {
        report
            .write_json(path)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    let accounts = pipeline::accounts_json(&report);
    if let Some(path) = &args.account_out {
        let text = serde_json::to_string_pretty(&accounts).context("serialising the account")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("account written to {}", path.display());
    }
    if let Some(writer) = history {
        let bt = pinion_engine::backtest::BacktestReport::new(&report, &settings.backtest);
        let venue = settings
            .live
            .as_ref()
            .map_or_else(String::new, |l| l.spec.venue.name().to_owned());
        let batch = RunBatch::new(
            "live",
            started,
            &report.origin,
            &report.input.description,
            &bt,
        )
        .with_accounts(&venue, &accounts);
        write_history_as(writer, batch, streamed)?;
    }
    // Orders whose state is not known at the end make the run unclean, whatever the books.
    let unresolved: Vec<String> = accounts
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| {
            let symbol = a["symbol"].as_str().unwrap_or("?").to_owned();
            a["orders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|o| {
                    let state = o["state"].as_str().unwrap_or("");
                    state == "Unknown" || state.starts_with("Pending")
                })
                .map(move |o| {
                    format!(
                        "{symbol} {} {}",
                        o["client_order_id"].as_str().unwrap_or("?"),
                        o["state"].as_str().unwrap_or("?")
                    )
                })
        })
        .collect();
    // A live session ends by being stopped: with a duration, that is its clean end.
    if duration.is_none() {
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    let unsynced: Vec<String> = pipeline::final_books(&report)
        .into_iter()
        .filter(|b| b.state != "live")
        .map(|b| format!("{} {} {}", b.venue, b.symbol, b.state))
        .collect();
    if !unresolved.is_empty() {
        eprintln!(
            "pinion: {} orders not resolved at the end: {}; exit code {EXIT_DAMAGED}",
            unresolved.len(),
            unresolved.join(", ")
        );
        return Ok(ExitCode::from(EXIT_DAMAGED));
    }
    if !unsynced.is_empty() {
        eprintln!(
            "pinion: books not live at the end: {}; exit code {EXIT_DAMAGED}",
            unsynced.join(", ")
        );
        return Ok(ExitCode::from(EXIT_DAMAGED));
    }
    Ok(ExitCode::SUCCESS)
}

fn convert(settings: &Settings, args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let (input, output) = (&args.input, &args.output);
    let summary = pipeline::convert_recording_as(settings, input, output, args.encoding)
        .with_context(|| format!("converting {} to {}", input.display(), output.display()))?;
    if let Some(sbe) = &summary.sbe {
        println!(
            "SBE: {} frames encoded ({} trades, {} best bid/ask, {} partial depth, {} diff depth); \
             {} control replies and {} other venues' frames kept as JSON; {} frames of streams \
             SBE does not have dropped; {} frames refused and kept as JSON{}",
            sbe.encoded_total(),
            sbe.encoded(Template::Trades),
            sbe.encoded(Template::BestBidAsk),
            sbe.encoded(Template::DepthSnapshot),
            sbe.encoded(Template::DepthDiff),
            sbe.control,
            sbe.other_venue,
            sbe.dropped,
            sbe.refused,
            sbe.first_refusal
                .as_ref()
                .map_or_else(String::new, |e| format!(" (the first: {e})"))
        );
    }
    println!(
        "{} records ({} payload bytes) and {} instruments written to {}",
        summary.stats.records,
        summary.stats.payload_bytes,
        summary.instruments,
        summary
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn book(settings: &Settings, args: &BookArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    // Opened before the replay, so a path that cannot be written is found at once.
    let mut json = match &args.json {
        Some(path) => Some((
            std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ),
            path,
        )),
        None => None,
    };
    let mut stdout = std::io::stdout().lock();
    let depth = usize::try_from(args.depth).unwrap_or(usize::MAX);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| pipeline::PipelineError::Io { path, source }
    };
    let summary = pipeline::replay_books(settings, args.points(), depth, |point| {
        if !args.quiet {
            stdout
                .write_all(point.text().as_bytes())
                .map_err(io(Path::new("stdout")))?;
        }
        if let Some((out, path)) = &mut json {
            serde_json::to_writer(&mut *out, point)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(io(path))?;
        }
        Ok(())
    })?;
    if let Some((mut out, path)) = json {
        out.flush()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "pinion book: {} messages, {} points; {} decode errors, {} source errors{}",
        summary.messages,
        summary.points,
        summary.decode_errors,
        summary.source_errors,
        summary
            .last_source_error
            .as_ref()
            .map_or_else(String::new, |e| format!(" (the last: {e})"))
    );
    if let DumpPoints::At(n) = args.points()
        && n > summary.messages
    {
        eprintln!(
            "pinion book: the input has {} messages, so there is no message {n}: the books shown are the end's",
            summary.messages
        );
    }
    Ok(ExitCode::SUCCESS)
}
