//! The `esrbot` command: parses the command line, loads the configuration, sets up logging and
//! hands over to the library. Nothing here decides anything about ESR.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use clap::{Parser, Subcommand};

use esrbot::bot::{Bot, load_engine};
use esrbot::config::Config;
use esrbot::engine::Understood;
use esrbot::timeexpr::{find_past_time, format_clock};
use esrbot::{chat, check, convtest, eval};

#[derive(Parser)]
#[command(name = "esrbot", version, about = "Gets NHS staff back into ESR")]
struct Cli {
    /// Settings file (default: config.toml in the working directory; built-in defaults if absent).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Talk to the bot in this terminal; reminders are printed as they fall due.
    Chat {
        /// Who you are (your state is kept under this name).
        #[arg(long, default_value = "me")]
        user: String,
    },
    /// Show how one message is understood: intent, confidence, runners-up, times found.
    Classify { text: String },
    /// Score understanding on a `text<TAB>intent` file.
    Eval {
        file: PathBuf,
        /// Print the figures as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run conversation tests (files or folders of .toml).
    Test {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Validate config.toml, intents/ and data/.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ESRBOT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("esrbot: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let (path, required) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("config.toml"), false),
    };
    Config::load(&path, required, std::env::vars())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(&cli)?;
    match &cli.command {
        Command::Check => {
            let (problems, summary) = check::check(&config);
            for p in &problems {
                println!("{p}");
            }
            if problems.is_empty() {
                println!(
                    "ok: config {}; {summary}",
                    cli.config
                        .as_ref()
                        .map_or("config.toml".into(), |p| p.display().to_string())
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{} problem(s)", problems.len());
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Classify { text } => {
            let engine = load_engine(&config)?;
            let (c, u) =
                engine.understand(&esrbot::privacy::redact(&esrbot::text::clean_input(text)).text);
            let (intent, confidence) = engine.predict(text);
            println!(
                "intent: {intent} (confidence {confidence:.3}{})",
                if c.by_pattern { ", pattern" } else { "" }
            );
            if let Understood::Ambiguous { options } = &u {
                let names: Vec<&str> = options.iter().map(|i| engine.label(*i)).collect();
                println!(
                    "ambiguous: the bot would ask which of {} was meant",
                    names.join(", ")
                );
            }
            for (i, p) in c.ranked.iter().skip(1).take(2) {
                println!("next: {} ({p:.3})", engine.label(*i));
            }
            let now = Utc::now();
            match find_past_time(text, now, engine.rules.tz) {
                Some(m) => println!(
                    "time: \"{}\" = {}",
                    m.text,
                    format_clock(m.at, now, engine.rules.tz)
                ),
                None => println!("time: none"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval { file, json } => {
            let engine = load_engine(&config)?;
            let rows = eval::read_tsv(file, engine.classifier().labels())?;
            let report = eval::evaluate(&engine, &rows);
            if *json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", report.table());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Test { paths } => {
            let engine = Arc::new(load_engine(&config)?);
            let files = convtest::collect(paths)?;
            let (mut passed, mut failed) = (0, 0);
            for f in files {
                let o = convtest::run_file(&engine, &config, &f);
                if o.failures.is_empty() {
                    passed += 1;
                    println!("ok   {}", o.name);
                } else {
                    failed += 1;
                    println!("FAIL {}", o.name);
                    for line in &o.failures {
                        println!("  {}", line.replace('\n', "\n  "));
                    }
                }
            }
            println!("{passed} passed, {failed} failed");
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Chat { user } => {
            let engine = Arc::new(load_engine(&config)?);
            let bot = Arc::new(Bot::open(engine, &config).context("opening the database")?);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(chat::run(bot, user.clone()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
