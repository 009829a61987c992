//! The command line of the `backend` and `socket-lab` binaries (one program under two names:
//! `cargo run -p backend` in development, `socket-lab` once `cargo install --path backend`
//! has installed it): serves Socket Lab, lists its scenarios, traces one in the terminal, or
//! watches a program. Everything it does lives in the library; this file only reads
//! arguments.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shared::RunOutcome;

use crate::run::{Outside, OutsidePeer, record_all, record_with_outside};
use crate::{Config, scenario_list, serve, trace};

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
        /// Write the run's packets to FILE as pcapng (Wireshark and tshark open it).
        #[arg(long, value_name = "FILE")]
        pcap: Option<std::path::PathBuf>,
        /// Leave one role to your own program: Socket Lab plays the other and waits for yours
        /// on 127.0.0.1 (only scenarios with a server and a client allow it).
        #[arg(long, value_enum)]
        external: Option<ExternalRole>,
        /// With --external: the port on 127.0.0.1 where the server listens.
        #[arg(long, default_value_t = 12345, requires = "external")]
        port: u16,
        /// With --external: how many seconds to wait for your program.
        #[arg(long, default_value_t = 60.0, requires = "external")]
        timeout: f64,
    },
    /// Run your own program (any language) and show every socket call it makes, traced from
    /// the kernel: `watch -- python3 server.py`. Exits with the program's own status.
    Watch {
        /// Write the calls to this file instead of standard error.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// Print one JSON object per event instead of a table.
        #[arg(long)]
        json: bool,
        /// Show the calls in the terminal only: no page (by default the page of the Socket
        /// Lab serving on this machine shows them, or `watch` serves one itself).
        #[arg(long)]
        no_page: bool,
        /// The built frontend, when `watch` serves the page itself.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist"))]
        static_dir: PathBuf,
        /// Run the program in Socket Lab's own network: a loopback of its own, shared by
        /// your programs watched with --private-net at the same time (your server and client
        /// see each other on 127.0.0.1) and reaching nothing else, with every packet captured.
        #[arg(long)]
        private_net: bool,
        /// Write the packets of the private network, while the program runs, to FILE as
        /// pcapng (Wireshark and tshark open it). Needs --private-net.
        #[arg(long, value_name = "FILE", requires = "private_net")]
        pcap: Option<PathBuf>,
        /// The program and its arguments (after `--`).
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "PROGRAM"
        )]
        command: Vec<std::ffi::OsString>,
    },
    /// The holder of `watch --private-net`'s network (started by `watch`, not by hand).
    #[command(name = "private-net-holder", hide = true)]
    PrivateNetHolder {
        /// Where it listens for the `watch`es that join.
        socket: PathBuf,
    },
    /// Measure start, the page's size as served, latency, throughput, sessions, memory and the
    /// cost of watching on this machine, against a server this command starts (build with
    /// --release for true figures; the page's timings come from its browser script).
    Bench {
        /// Print the figures as one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// A short run (seconds) that shows every part works; its figures are rough.
        #[arg(long)]
        quick: bool,
        /// Run only these parts (may be given more than once).
        #[arg(long, value_enum)]
        only: Vec<crate::bench::Part>,
        /// The built frontend the server serves.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist"))]
        static_dir: PathBuf,
    },
}

/// The role an outside program plays.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ExternalRole {
    /// Your program is the client; Socket Lab plays the server.
    Client,
    /// Your program is the server; Socket Lab plays the client.
    Server,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The address to listen on. Loopback by default: nobody else on the network can reach it.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// The built frontend to serve (`trunk build --release` writes it to `dist/`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist"))]
    static_dir: PathBuf,
    /// Another origin allowed to open sessions, exactly as a browser sends it, such as
    /// `http://127.0.0.1:8080` (may be given more than once).
    #[arg(long, value_name = "ORIGIN")]
    allow_origin: Vec<String>,
    /// The access token sessions must give (`?token=` in the page's URL). Served beyond
    /// loopback, one is made up when none is given.
    #[arg(long)]
    token: Option<String>,
    /// A network, besides loopback, that sessions may bind, connect and send to, such as
    /// `10.1.0.0/16` (may be given more than once). Without it no session sends a packet
    /// off this machine.
    #[arg(long, value_name = "CIDR")]
    allow_net: Vec<ipnet::IpNet>,
    #[command(flatten)]
    limits: crate::limits::Limits,
}

/// Reads the command line and does what it says; `src/main.rs` and `src/bin/socket-lab.rs`
/// call only this.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any other thread starts: the tracer blocks the signals it forwards, and every
    // thread must have them blocked, or one would die of a Ctrl-C meant for the program.
    match cli.command {
        Some(Command::Watch {
            output,
            json,
            no_page,
            static_dir,
            private_net,
            pcap,
            command,
        }) => {
            let status = crate::watch::run(&crate::watch::WatchOptions {
                command,
                output,
                json,
                page: (!no_page).then_some(static_dir),
                private_net,
                pcap,
            });
            return ExitCode::from(u8::try_from(status).unwrap_or(u8::MAX));
        }
        // One thread, as the holder needs to enter a user namespace.
        Some(Command::PrivateNetHolder { socket }) => {
            return ExitCode::from(u8::try_from(crate::private_net::hold(&socket)).unwrap_or(1));
        }
        _ => {}
    }
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
    // A lab's sessions each hold a WebSocket and their runs' sockets: allow as many
    // descriptors as the system lets this process have, not the shell's default soft limit.
    crate::server::raise_descriptor_limit();
    match cli.command {
        None => runtime.block_on(run_server(cli.serve)),
        Some(Command::Bench {
            json,
            quick,
            only,
            static_dir,
        }) => runtime.block_on(run_bench(
            json,
            crate::bench::BenchOptions {
                static_dir,
                quick,
                only,
            },
        )),
        Some(Command::Serve(args)) => runtime.block_on(run_server(args)),
        Some(Command::Watch { .. } | Command::PrivateNetHolder { .. }) => {
            unreachable!("watch and the holder run before the runtime starts")
        }
        Some(Command::Scenarios) => {
            for (id, title) in scenario_list() {
                println!("{id:<24}  {title}");
            }
            ExitCode::SUCCESS
        }
        Some(Command::Trace {
            scenario,
            json,
            pcap,
            external,
            port,
            timeout,
        }) => {
            let peer = match external
                .map(|role| outside_peer(role, port, timeout))
                .transpose()
            {
                Ok(peer) => peer,
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(2);
                }
            };
            runtime.block_on(run_trace(&scenario, json, pcap.as_deref(), peer))
        }
    }
}

async fn run_server(args: ServeArgs) -> ExitCode {
    if let Err(problem) = args.limits.check() {
        eprintln!("error: {problem}");
        return ExitCode::from(2);
    }
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
    let mut config = Config::new(args.static_dir);
    config.allow_origins = args.allow_origin;
    config.limits = args.limits;
    if !args.allow_net.is_empty() {
        let nets: Vec<String> = args.allow_net.iter().map(ToString::to_string).collect();
        eprintln!(
            "Sessions may also bind, connect and send to {}: their packets can leave this machine",
            nets.join(", ")
        );
    }
    config.allow_net = args.allow_net;
    // `socket-lab watch` in another terminal hands this server its program's calls.
    config.hub_socket = Some(crate::hub::handin::default_path());
    // Beyond loopback, anyone on the network could reach the server: sessions need a token,
    // made up now unless one was given, and never logged.
    config.token = match args.token {
        Some(token) => Some(token),
        None if !local.ip().is_loopback() => match crate::access::new_token() {
            Ok(token) => Some(token),
            Err(error) => {
                eprintln!("error: could not make an access token: {error}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    match &config.token {
        Some(token) if local.ip().is_unspecified() => eprintln!(
            "Socket Lab is serving port {} on every address of this machine (Ctrl-C stops it).\n\
             Open http://<this machine's address>:{}/?token={token}",
            local.port(),
            local.port()
        ),
        Some(token) => {
            eprintln!("Socket Lab is serving http://{local}/?token={token} (Ctrl-C stops it)");
        }
        None => eprintln!("Socket Lab is serving http://{local}/ (Ctrl-C stops it)"),
    }
    match serve(listener, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: the server failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run_bench(json: bool, options: crate::bench::BenchOptions) -> ExitCode {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build; its figures are not the app's \
             (cargo run --release -p backend -- bench)"
        );
    }
    match crate::bench::run(options).await {
        Ok(report) if json => match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
        Ok(report) => {
            print!("{}", crate::bench::table(&report));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: the benchmark could not finish: {error}");
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

fn outside_peer(role: ExternalRole, port: u16, timeout: f64) -> Result<OutsidePeer, String> {
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 86_400.0) {
        return Err(format!(
            "--timeout must be seconds from 0 to 86400, not {timeout}"
        ));
    }
    if port == 0 {
        return Err("--port must be a port from 1 to 65535".to_owned());
    }
    Ok(OutsidePeer {
        role: match role {
            ExternalRole::Client => Outside::Client,
            ExternalRole::Server => Outside::Server,
        },
        port,
        timeout: std::time::Duration::from_secs_f64(timeout),
    })
}

async fn run_trace(
    scenario: &str,
    json: bool,
    pcap: Option<&std::path::Path>,
    peer: Option<OutsidePeer>,
) -> ExitCode {
    let recorded = match peer {
        None => record_all(scenario)
            .await
            .map_err(|error| error.to_string()),
        Some(peer) => {
            let port = peer.port;
            match peer.role {
                Outside::Client => eprintln!(
                    "Waiting up to {} s for your client: connect it to ('127.0.0.1', {port}), \
                     for example with the tutorial's client.py and host = '127.0.0.1', port = {port}",
                    peer.timeout.as_secs_f64()
                ),
                Outside::Server => eprintln!(
                    "Waiting up to {} s for your server to listen on ('127.0.0.1', {port}), \
                     for example the tutorial's server.py with port = {port}",
                    peer.timeout.as_secs_f64()
                ),
            }
            record_with_outside(scenario, peer)
                .await
                .map_err(|error| error.to_string())
        }
    };
    let recording = match recorded {
        Ok(recorded) => recorded,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if !recording.capture.on {
        eprintln!(
            "{}",
            recording
                .capture
                .off_because
                .as_deref()
                .unwrap_or("packets are off")
        );
    } else if recording.capture.lost_any() {
        eprintln!(
            "packets not kept: {} beyond the run's limit, {} dropped by the kernel",
            recording.capture.beyond_limit, recording.capture.dropped_by_kernel
        );
    }
    if let Some(path) = pcap {
        let file = shared::pcapng::write(&recording.capture, &recording.packets, |packet| {
            shared::cause::packet_cause(packet, &recording.events).map(|cause| cause.text)
        });
        if let Err(error) = std::fs::write(path, file) {
            eprintln!("error: could not write {}: {error}", path.display());
            return ExitCode::from(2);
        }
    }
    let mut out = std::io::stdout().lock();
    if !json {
        let _ = writeln!(out, "{}", trace::table_header());
    }
    let endpoints = shared::cause::Endpoints::of(&recording.events);
    for line in trace::in_time_order(&recording.events, &recording.packets) {
        let line = match (line, json) {
            (trace::Line::Event(event), true) => trace::json_line(event),
            (trace::Line::Event(event), false) => trace::table_row(event),
            (trace::Line::Packet(packet), true) => trace::packet_json_line(packet),
            (trace::Line::Packet(packet), false) => trace::packet_row_explained(
                packet,
                &shared::cause::cause(packet, &recording.events, &endpoints),
            ),
        };
        if writeln!(out, "{line}").is_err() {
            // stdout was closed (`trace ... | head`): nobody reads any more.
            return ExitCode::SUCCESS;
        }
    }
    if json {
        let _ = writeln!(out, "{}", trace::capture_json_line(&recording.capture));
    }
    match recording.outcome {
        RunOutcome::Completed => ExitCode::SUCCESS,
        RunOutcome::Cancelled { reason } | RunOutcome::Failed { message: reason } => {
            eprintln!("error: the run did not complete: {reason}");
            ExitCode::FAILURE
        }
    }
}
