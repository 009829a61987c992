//! The `backend` command: serves Socket Lab, lists its scenarios, or traces one in the
//! terminal. Everything it does lives in the library; this file only reads arguments.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use backend::{Config, run::record, scenario_list, serve, trace};
use clap::{Parser, Subcommand};
use shared::RunOutcome;

/// Socket Lab: watch a client and a server talk through real sockets.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the app (what runs when no command is given).
    Serve(ServeArgs),
    /// List the scenarios, one `ID  TITLE` a line.
    Scenarios,
    /// Play a scenario on real sockets and print its events as they happen.
    Trace {
        /// The scenario's id (see `backend scenarios`).
        scenario: String,
        /// Print one JSON object per event instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The address to listen on. Loopback by default: nobody else on the network can reach it.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// The built frontend to serve (`trunk build --release` writes it to `dist/`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist"))]
    static_dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "backend=info,tower_http=warn".into()),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        None => runtime.block_on(run_server(cli.serve)),
        Some(Command::Serve(args)) => runtime.block_on(run_server(args)),
        Some(Command::Scenarios) => {
            for (id, title) in scenario_list() {
                println!("{id:<24}  {title}");
            }
            ExitCode::SUCCESS
        }
        Some(Command::Trace { scenario, json }) => runtime.block_on(run_trace(&scenario, json)),
    }
}

async fn run_server(args: ServeArgs) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            let hint = if error.kind() == std::io::ErrorKind::AddrInUse {
                " (is another backend already running? choose another port with --addr)"
            } else {
                ""
            };
            eprintln!("error: cannot listen on {}: {error}{hint}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().map_or(args.addr, |addr| addr);
    eprintln!("Socket Lab is serving http://{local}/ (Ctrl-C stops it)");
    let config = Config {
        static_dir: args.static_dir,
    };
    match serve(listener, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: the server failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
    eprintln!("Shutting down: closing every session");
}

async fn run_trace(scenario: &str, json: bool) -> ExitCode {
    let (events, outcome) = match record(scenario).await {
        Ok(recorded) => recorded,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    if !json {
        let _ = writeln!(out, "{}", trace::table_header());
    }
    for event in &events {
        let line = if json {
            trace::json_line(event)
        } else {
            trace::table_row(event)
        };
        if writeln!(out, "{line}").is_err() {
            // stdout was closed (`trace ... | head`): nobody reads any more.
            return ExitCode::SUCCESS;
        }
    }
    match outcome {
        RunOutcome::Completed => ExitCode::SUCCESS,
        RunOutcome::Cancelled { reason } | RunOutcome::Failed { message: reason } => {
            eprintln!("error: the run did not complete: {reason}");
            ExitCode::FAILURE
        }
    }
}
