//! The `esrbot` command: parses the command line, loads the configuration, sets up logging and
//! hands over to the library. Nothing here decides anything about ESR.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use clap::{Parser, Subcommand};

use esrbot::clock::SystemClock;
use esrbot::config::Config;
use esrbot::core::engine::Understood;
use esrbot::core::escalation::Action;
use esrbot::service::{self as bot, Service, load_engine};
use esrbot::store::Store;
use esrbot::tools::{self, check, convtest, eval};
use esrbot::transports::chat;
use esrbot::understanding::timeexpr::{find_past_time, format_clock};

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
        /// Leave out rows whose text is also a training example in intents/.
        #[arg(long)]
        unseen: bool,
    },
    /// Cross-validate on the training examples: train on all folds but one, score the one left.
    Crossval {
        /// Number of folds (2 to 10).
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Print the figures as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Train the classifier on intents/ and data/ and save it to `understanding.model_path`.
    Train,
    /// Run conversation tests (files or folders of .toml).
    Test {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Validate config.toml, intents/ and data/ (every problem, with its file and line).
    Check {
        /// Also run redb's integrity check of the database.
        #[arg(long)]
        database: bool,
    },
    /// Run everything configured in one process: Discord when DISCORD_TOKEN is set, the job
    /// dispatcher, the mail sender and the admin listener (`[admin] listen`).
    Serve,
    /// `serve`, refusing to start without DISCORD_TOKEN.
    Discord,
    /// Write a consistent copy of the database to PATH while the bot runs, and verify it.
    Backup { path: PathBuf },
    /// The support team's queue of escalations (works while the bot runs).
    Escalations {
        #[command(subcommand)]
        command: EscalationCommand,
    },
    /// The support team's dashboard accounts (works while the bot runs).
    Support {
        #[command(subcommand)]
        command: SupportCommand,
    },
    /// Analytics: export the questions marked for the content team.
    Analytics {
        #[command(subcommand)]
        command: AnalyticsCommand,
    },
    /// E-mail: check the relay settings.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
}

#[derive(Subcommand)]
enum EscalationCommand {
    /// List escalations, oldest first.
    List {
        /// Only this status: open, sent, acknowledged, resolved, failed.
        #[arg(long)]
        status: Option<String>,
    },
    /// Everything about one escalation, with its history and e-mail.
    Show { reference: String },
    /// Take an escalation: someone is working on it.
    Ack {
        reference: String,
        #[arg(long)]
        by: String,
    },
    /// Close an escalation; the staff member is told.
    Resolve {
        reference: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Queue a failed e-mail again.
    Retry {
        reference: String,
        #[arg(long, default_value = "admin")]
        by: String,
    },
}

#[derive(Subcommand)]
enum SupportCommand {
    /// Create an account; its one-time password is printed alone on the last line.
    Add { name: String },
    /// List the accounts.
    List,
    /// Remove an account and end its sessions.
    Remove { name: String },
    /// Give an account a new one-time password (printed alone on the last line) and end its
    /// sessions.
    Reset { name: String },
}

#[derive(Subcommand)]
enum AnalyticsCommand {
    /// Write the kept questions marked "should have been INTENT" as a `text<TAB>intent` file
    /// for `esrbot eval` (to standard output without --output).
    Export {
        #[arg(long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum MailCommand {
    /// Send a test e-mail with the current settings and print the server's answer.
    Test,
}

fn main() -> ExitCode {
    // `esrbot classify … | head -1` must end quietly, not panic on a closed pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("ESRBOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("ESRBOT_LOG_FORMAT").is_ok_and(|f| f == "json") {
        // One JSON object a line, for a log collector.
        logs.json().init();
    } else {
        // Colour codes only for a person at a terminal, never in a log file or a journal.
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    match run(cli) {
        // Damage found only while closing the database still fails the command.
        Ok(_) if esrbot::store::damage_seen() => ExitCode::from(2),
        Ok(code) => code,
        Err(e) => {
            eprintln!("esrbot: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn escalations(config: &Config, command: &EscalationCommand) -> anyhow::Result<ExitCode> {
    // Looking changes nothing in the file; acting opens it for writing.
    let reading = || Store::open_read_only(&config.storage_path()).context("opening the database");
    let store = || Store::open(&config.storage_path()).context("opening the database");
    match command {
        EscalationCommand::List { status } => {
            tools::escalations::list(&reading()?, status.as_deref())
        }
        EscalationCommand::Show { reference } => tools::escalations::show(&reading()?, reference),
        EscalationCommand::Ack { reference, by } => {
            tools::escalations::act(config, store()?, reference, Action::Acknowledge, by, None)
        }
        EscalationCommand::Resolve {
            reference,
            by,
            note,
        } => tools::escalations::act(
            config,
            store()?,
            reference,
            Action::Resolve,
            by,
            note.as_deref(),
        ),
        EscalationCommand::Retry { reference, by } => {
            tools::escalations::act(config, store()?, reference, Action::Retry, by, None)
        }
    }
}

fn support(config: &Config, command: &SupportCommand) -> anyhow::Result<ExitCode> {
    // Like `escalations`: looking opens the file read-only, changing it opens it for writing
    // alongside a running bot.
    let path = config.storage_path();
    let store = || Store::open(&path).context("opening the database");
    match command {
        SupportCommand::Add { name } => tools::support::add(&store()?, name),
        SupportCommand::List => {
            tools::support::list(&Store::open_read_only(&path).context("opening the database")?)
        }
        SupportCommand::Remove { name } => tools::support::remove(&store()?, name),
        SupportCommand::Reset { name } => tools::support::reset(&store()?, name),
    }
}

/// The settings file, and whether it must exist (only when named with --config).
fn config_path(cli: &Cli) -> (PathBuf, bool) {
    match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("config.toml"), false),
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let (path, required) = config_path(cli);
    Config::load(&path, required, std::env::vars())
}

/// `esrbot check`: every problem in the settings and the declarations, all listed in one run.
fn check_command(cli: &Cli, database: bool) -> ExitCode {
    let (path, required) = config_path(cli);
    let (problems, summary) = check::check_all(&path, required, std::env::vars(), database);
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
        ExitCode::SUCCESS
    } else {
        println!("{} problem(s)", problems.len());
        ExitCode::FAILURE
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // `check` reads the settings itself: it reports a broken config.toml instead of stopping.
    let config = match &cli.command {
        Command::Check { database } => return Ok(check_command(&cli, *database)),
        _ => load_config(&cli)?,
    };
    match &cli.command {
        // Handled above, before the settings are loaded.
        Command::Check { database } => Ok(check_command(&cli, *database)),
        Command::Classify { text } => {
            // The same cap as a message: a huge argument is refused, not classified for seconds.
            let chars = text.chars().count();
            if chars > esrbot::understanding::text::MAX_MESSAGE_CHARS {
                anyhow::bail!(
                    "the text is {chars} characters long; messages longer than {} are not read",
                    esrbot::understanding::text::MAX_MESSAGE_CHARS
                );
            }
            let engine = load_engine(&config)?;
            let (c, u) = engine.understand_raw(text);
            let (intent, confidence) = engine.answered_as(&c, &u);
            println!(
                "intent: {intent} (confidence {confidence:.3}{})",
                if c.by_pattern { ", pattern" } else { "" }
            );
            if let Understood::Ambiguous { options } = &u {
                let names: Vec<&str> = options.iter().map(|i| engine.intent_id(*i)).collect();
                println!(
                    "ambiguous: the bot would ask which of {} was meant",
                    names.join(", ")
                );
            }
            for (i, p) in c.ranked.iter().skip(1).take(2) {
                println!("next: {} ({p:.3})", engine.intent_id(*i));
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
        Command::Eval { file, json, unseen } => {
            let intents = bot::load_intents(&config)?;
            let engine = bot::engine_for(&config, &intents)?;
            let mut rows = eval::read_tsv(file, engine.classifier().intent_ids())?;
            if *unseen {
                let (kept, dropped) = eval::unseen_rows(rows, &intents);
                if kept.is_empty() {
                    anyhow::bail!("{}: every row is also a training example", file.display());
                }
                eprintln!("left out {dropped} row(s) that are also training examples");
                rows = kept;
            }
            print_report(&eval::evaluate(&engine, &rows), *json)
        }
        Command::Train => {
            let intents = bot::load_intents(&config)?;
            let content = bot::load_content(&config, &intents)?;
            let started = std::time::Instant::now();
            let classifier =
                esrbot::understanding::classifier::Classifier::train(&intents, &content.lexicon);
            let took = started.elapsed();
            let path = config.model_path();
            let weights = classifier.weights_bytes();
            let key = esrbot::understanding::model::key(&intents, &config.data_dir());
            esrbot::understanding::model::save(&path, key, &weights)
                .with_context(|| format!("writing the model to {}", path.display()))?;
            println!(
                "trained on {} intents in {} ms; model written to {} ({} KB, key {key:016x})",
                intents.len(),
                took.as_millis(),
                path.display(),
                weights.len().div_ceil(1024)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Crossval { folds, json } => {
            if !(2..=10).contains(folds) {
                anyhow::bail!("--folds must be between 2 and 10 (got {folds})");
            }
            let intents = bot::load_intents(&config)?;
            let mut pairs = Vec::new();
            for fold in eval::folds(&intents, *folds) {
                let engine = bot::engine_trained_for(&config, &fold.train)?;
                for (text, gold) in fold.held {
                    pairs.push((gold, engine.predict(&text).0.to_string()));
                }
            }
            print_report(&eval::score(&pairs), *json)
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
            let total = passed + failed;
            if total > 0 {
                println!(
                    "pass rate: {:.1}% ({passed} of {total} conversations)",
                    100.0 * passed as f64 / total as f64
                );
            }
            println!("{passed} passed, {failed} failed");
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Escalations { command } => escalations(&config, command),
        Command::Support { command } => support(&config, command),
        Command::Analytics {
            command: AnalyticsCommand::Export { output },
        } => {
            let store =
                Store::open_read_only(&config.storage_path()).context("opening the database")?;
            tools::support::export(&store, output.as_deref())
        }
        Command::Mail {
            command: MailCommand::Test,
        } => {
            let settings = esrbot::transports::mail::Settings::from_config(
                &config,
                std::env::var("ESRBOT_SMTP_PASSWORD").ok(),
            )?;
            let mailer =
                esrbot::transports::mail::Mailer::new(&settings).map_err(anyhow::Error::msg)?;
            let rt = tokio::runtime::Runtime::new()?;
            let now = Utc::now();
            let mail = esrbot::transports::mail::test_message(&settings, now);
            println!(
                "sending a test e-mail to {} via {}:{} ({:?})",
                settings.to, settings.host, settings.port, config.mail.tls
            );
            match rt.block_on(mailer.send(&mail)) {
                Ok(answer) => {
                    println!("accepted: {answer}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("not sent: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Serve | Command::Discord => {
            let token = std::env::var("DISCORD_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty());
            if token.is_none() && matches!(cli.command, Command::Discord) {
                anyhow::bail!("set the bot token in the environment variable DISCORD_TOKEN");
            }
            serve(config, token)
        }
        Command::Backup { path } => {
            let counts = esrbot::tools::backup::backup(&config.storage_path(), path)?;
            println!(
                "backup written to {} and verified: {counts}",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Chat { user } => {
            if user.trim().is_empty() {
                anyhow::bail!("--user must name who you are");
            }
            let engine = Arc::new(load_engine(&config)?);
            let svc = Arc::new(Service::open(engine, &config).context("opening the database")?);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(chat::run(svc, &config, user.clone()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(config: Config, discord_token: Option<String>) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    let metrics = esrbot::serve::install_metrics()?;
    let engine = Arc::new(load_engine(&config)?);
    let svc = Arc::new(Service::open(engine, &config).context("opening the database")?);
    svc.health.ready("database");
    svc.health.ready("content");
    rt.block_on(esrbot::serve::run(
        esrbot::serve::Serve {
            config,
            svc,
            clock: Arc::new(SystemClock),
            discord_token,
            metrics: Some(metrics),
        },
        esrbot::serve::terminated(),
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &eval::Report, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        println!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}
