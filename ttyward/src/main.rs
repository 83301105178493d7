//! `ttyward`: the secure serial device server.
//!
//! Subcommands: `bridge` (ad-hoc ports from the command line or a TOML
//! file, no accounts, no data directory) and `demo` (simulated devices on
//! several ports in different modes). Both run the same engine the daemon
//! will run. Exit codes: 0 clean stop, 1 runtime failure, 64 bad
//! configuration or arguments.

mod bridge;
mod demo;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a configuration that cannot be used (BSD EX_USAGE).
const EXIT_CONFIG: u8 = 64;

#[derive(Parser, Debug)]
#[command(
    name = "ttyward",
    version,
    about = "Secure serial device server (NPort operation modes)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Tokio worker threads; 1 runs everything on the main thread.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
    /// Log filter (tracing syntax), e.g. "debug" or "ttyward_engine=debug".
    #[arg(long, global = true, env = "TTYWARD_LOG", default_value = "info")]
    log: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve serial devices ad hoc: DEVICE@HOST:PORT ...
    Bridge(Box<bridge::Args>),
    /// Run simulated devices on several ports, with commands to try them.
    Demo(demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let runtime = if cli.workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.workers.into())
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ttyward: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Bridge(args) => bridge::run(*args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(serve::Failure::Config(msg)) => {
            eprintln!("ttyward: {msg}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(serve::Failure::Runtime(e)) => {
            eprintln!("ttyward: {e:#}");
            ExitCode::FAILURE
        }
    }
}
