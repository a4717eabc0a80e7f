//! The `pinion` command: parses the command line, loads and validates the config, and hands
//! the typed settings to the library. The only place `anyhow` is used.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;

use pinion_engine::cli::{Cli, Command, ConfigArgs, ConfigSource};
use pinion_engine::config::{Config, Overrides, REPLAY_TOML, REPLAY_TOML_NAME, Settings};

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
            let settings = load(&args.source, &args.overrides())?;
            replay(settings)
        }
        Command::Convert(args) => convert(&args.input, &args.output),
        Command::Config(args) => config(&args),
    }
}

/// Reads the config named on the command line (or the embedded one), applies the overrides and
/// validates it; every problem is printed at once.
fn load(source: &ConfigSource, overrides: &Overrides) -> anyhow::Result<Settings> {
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
    Ok(config.validate(&origin)?)
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
    Ok(ExitCode::SUCCESS)
}

fn replay(_settings: Settings) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the replay pipeline is not wired into this build yet")
}

fn convert(_input: &Path, _output: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("convert is not wired into this build yet")
}
