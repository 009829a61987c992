//! `watch`: runs a student's own program, in any language, and shows every socket system call
//! it makes, traced from the kernel.
//!
//! The program is the tracer's child: `watch` forks, and the child (`launch`) stops, waits
//! to be seized with ptrace, loads the seccomp filter (`filter.rs`) and executes the
//! program. From then on the kernel stops the program only at
//! the calls the filter names, and the tracer (`tracer.rs`) reads each call's arguments and
//! result from its registers and memory (`decode.rs`, `args.rs`) and reports it as
//! [`event`]s; calls on files and pipes go on without a report (`fds.rs`). Nothing needs
//! privileges: a process may trace its own child, and any process may filter itself.
//!
//! # Layout
//! - `filter.rs`: the seccomp filters, the lists of calls that stop the program, and
//!   `inject.rs`, which makes a process load the second one at its first socket call.
//! - `tracer.rs`: the ptrace loop: entry and return of each call, children, threads,
//!   `exec`, signals, exits.
//! - `decode.rs` and `args.rs`: registers and memory into named arguments.
//! - `fds.rs`: which descriptors of each process are sockets.
//! - `python.rs` and `python/sitecustomize.py`: a Python program's announcements of which
//!   line and socket method made each call.
//! - `kernel_view.rs`: the kernel's view of the program's sockets (through `pidfd_getfd`).
//! - `event.rs`: the events, and their JSON.
//! - this file: the command (`run`), its output, and the forwarding of `watch`'s own signals.

/// Writes a line of `watch`'s own to standard error, as `eprintln!` does, but never panics:
/// a terminal that went away (a closed pipe) must not end the tracer, which would kill the
/// program it traces.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod args;
mod decode;
mod event;
mod fds;
mod filter;
mod inject;
mod kernel_view;
mod packets;
mod page;
mod publish;
mod python;
mod tracer;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{ForkResult, Pid};
use shared::Phase;

use event::{WatchEvent, What};
use tracer::{Live, Tracer};

/// The exit status of a launcher that could not load the filter (125, as `env` and
/// container runtimes use for "the launcher failed", apart from the program's own 126/127).
const NO_FILTER_STATUS: i32 = 125;

/// What `watch` was asked to do.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The program and its arguments.
    pub command: Vec<OsString>,
    /// Where the calls go; standard error when absent.
    pub output: Option<PathBuf>,
    /// JSON lines instead of the table.
    pub json: bool,
    /// Show the calls in a page too, served (if no Socket Lab serves on this machine) from
    /// this built frontend.
    pub page: Option<PathBuf>,
    /// Run the program in the user's private network (`private_net`), capturing its packets.
    pub private_net: bool,
    /// Write the private network's packets to this file as pcapng.
    pub pcap: Option<PathBuf>,
}

/// What the page says of a watched program's packets without `--private-net`.
const PACKETS_NEED_PRIVATE_NET: &str = "packets are shown for programs watched with \
     --private-net (socket-lab watch --private-net -- PROGRAM): in the machine's network, \
     the packets of other programs would be mixed with the program's own";

/// Runs the program under watch and returns the status `watch` should exit with: the
/// program's own (128 plus the signal's number when a signal ended it), or 2 for `watch`'s
/// own failures, each said on standard error first.
pub fn run(options: &WatchOptions) -> i32 {
    match run_inner(options) {
        Ok(status) => status,
        Err(message) => {
            say!("socket-lab watch: {message}");
            2
        }
    }
}

fn run_inner(options: &WatchOptions) -> Result<i32, String> {
    if options.command.is_empty() {
        return Err("no program given: socket-lab watch -- PROGRAM [ARGS...]".to_owned());
    }
    let mut out: Box<dyn Write> = match &options.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|error| format!("cannot write {}: {error}", path.display()))?,
        )),
        None => Box::new(std::io::stderr()),
    };
    // Checked before the program starts, so that a machine that cannot filter says so
    // without running anything.
    filter::first_stage()?;
    if options.pcap.is_some() && !options.private_net {
        return Err(
            "--pcap needs --private-net: packets are captured in the private network only"
                .to_owned(),
        );
    }
    // Before the fork: the launcher enters the network, and the holder (when this `watch`
    // starts it) must be started while this process has one thread.
    let mut private_net = if options.private_net {
        Some(crate::private_net::PrivateNet::join()?)
    } else {
        None
    };
    let second_stage = filter::instructions(&filter::second_stage()?);
    // `watch`'s own Ctrl-C and SIGTERM are handled by a thread of their own (below); the
    // launcher unblocks them again before it executes the program.
    let signals = forwarded_signals();
    signals
        .thread_block()
        .map_err(|error| format!("could not block signals: {error}"))?;
    let announcer = python::Announcer::new()
        .map_err(|error| format!("cannot write the Python announcer: {error}"))?;
    let python_path = announcer.python_path();
    let started = Instant::now();
    #[allow(unsafe_code)] // nix's fork is unsafe: a child of a threaded process is limited.
    // SAFETY: `watch` has one thread here (the signal thread and the runtime start later; the
    // command line dispatches `watch` before anything else), so the child may do all that a
    // one-thread program may: allocate, print, execute.
    let forked = unsafe { nix::unistd::fork() };
    let root = match forked {
        Ok(ForkResult::Child) => launch(&options.command, &python_path, private_net.as_ref()),
        Ok(ForkResult::Parent { child }) => child,
        Err(error) => return Err(format!("cannot start the program: {error}")),
    };
    // After the fork: the page's threads must not be in the launcher's copy of `watch`.
    let mut page = options.page.as_deref().and_then(|static_dir| {
        let command: Vec<String> = options
            .command
            .iter()
            .map(|word| word.to_string_lossy().into_owned())
            .collect();
        match publish::Page::open(&command.join(" "), static_dir, started) {
            Ok(page) => {
                let served = if page.serves {
                    " (served by this watch until the program ends)"
                } else {
                    ""
                };
                say!(
                    "socket-lab watch: the calls are live at {}{served}",
                    page.url
                );
                Some(page)
            }
            Err(problem) => {
                say!("socket-lab watch: no page ({problem}); the calls are shown here only");
                None
            }
        }
    });
    let capture = private_net.as_mut().and_then(|network| {
        let started_unix_ns = crate::capture::unix_now_ns() - started.elapsed().as_nanos() as i128;
        let page_packets = page.as_ref().and_then(publish::Page::packets);
        let started = network.take_packet_socket().and_then(|socket| {
            packets::WatchCapture::start(
                socket,
                started_unix_ns,
                options.pcap.is_some(),
                options.json,
                page_packets,
            )
            .map_err(|error| format!("could not read the network's packets: {error}"))
        });
        match started {
            Ok(capture) => Some(capture),
            Err(why) => {
                say!("socket-lab watch: packets are off: {why}");
                if let Some(page) = page.as_mut() {
                    page.packets_off(&format!("packets are off: {why}"));
                }
                None
            }
        }
    });
    if private_net.is_none()
        && let Some(page) = page.as_mut()
    {
        page.packets_off(PACKETS_NEED_PRIVATE_NET);
    }
    // The program is stopped until it is seized: the page and the capture are ready before
    // its first call, so a program that connects at once has its SYN captured.
    if let Err(message) = tracer::seize(root) {
        let _ = nix::sys::signal::kill(root, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(root, None);
        return Err(message);
    }
    let live = Live::default();
    forward_signals(signals, live.clone());
    if !options.json {
        let _ = writeln!(out, "{}", table_header());
    }
    let mut write_failed = false;
    let json = options.json;
    let mut table = TableView::new(root.as_raw());
    let mut emit = |event: WatchEvent| {
        if let Some(page) = page.as_mut() {
            page.push(&event);
        }
        if write_failed {
            return;
        }
        // The packets captured since the last call shown come first: they happened before
        // this call's event was made.
        let mut lines: Vec<String> = capture
            .as_ref()
            .map(packets::WatchCapture::take_pending)
            .unwrap_or_default();
        if json {
            lines.push(json_line(&event));
        } else {
            lines.extend(table.shown(event).iter().map(table_row));
        }
        // Flushed each line, so that the calls interleave with the program's own output as
        // they happened.
        for line in lines {
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                write_failed = true;
            }
        }
    };
    let ending = Tracer::new(second_stage, root, started, live, &mut emit).run();
    // The program's last packets are queued by its last calls, which have returned: the
    // capture reads them, and its counts go to the page before the run's end.
    let captured = capture.map(packets::WatchCapture::finish);
    if let Some(page) = page.take() {
        page.finish();
    }
    drop(private_net);
    if let Some((status, kept, pending)) = &captured {
        if !write_failed {
            for line in pending {
                let _ = writeln!(out, "{line}");
            }
            if options.json {
                let _ = writeln!(out, "{}", crate::trace::capture_json_line(status));
            }
        }
        say_capture(status);
        if let Some(path) = &options.pcap {
            let file = shared::pcapng::write(status, kept, |_| None);
            if let Err(error) = std::fs::write(path, file) {
                say!(
                    "socket-lab watch: could not write {}: {error}",
                    path.display()
                );
            }
        }
    }
    let ending = ending?;
    let _ = out.flush();
    if let tracer::Ending::Killed(signal) = ending {
        say!(
            "socket-lab watch: the program was killed by {} ({signal_text})",
            signal.as_str(),
            signal_text = signal_description(signal)
        );
    }
    Ok(ending.shell_status())
}

/// Says how many packets were captured, and what was lost.
fn say_capture(status: &shared::Capture) {
    if !status.on {
        return;
    }
    say!(
        "socket-lab watch: {} packets captured in the private network",
        status.kept
    );
    if status.lost_any() {
        say!(
            "socket-lab watch: packets not kept: {} beyond the limit or the page's room, {} dropped by the kernel",
            status.beyond_limit,
            status.dropped_by_kernel
        );
    }
}

/// The launcher's part, in the forked child: enter the private network if asked, stop until
/// the tracer has seized this process, load the filter, and become the program. Never
/// returns.
fn launch(
    command: &[OsString],
    python_path: &OsString,
    private_net: Option<&crate::private_net::PrivateNet>,
) -> ! {
    if let Some(network) = private_net
        && let Err(message) = network.enter()
    {
        say!("socket-lab watch: {message}");
        std::process::exit(NO_FILTER_STATUS);
    }
    // A binary given file capabilities (`setcap cap_net_raw+ep`, for packets where there is
    // no network of Socket Lab's own) makes its process undumpable, and an undumpable
    // process may not be traced by its parent: the launcher, about to become the student's
    // program (which gets none of those capabilities), makes itself dumpable again.
    let _ = nix::sys::prctl::set_dumpable(true);
    // The tracer waits for this stop, seizes the process and wakes it with SIGCONT.
    let _ = nix::sys::signal::raise(Signal::SIGSTOP);
    let loaded = filter::first_stage().and_then(|program| {
        seccompiler::apply_filter(&program).map_err(|error| {
            format!("seccomp filters are not allowed here ({error}); watch needs them to stop the program only at its socket calls")
        })
    });
    if let Err(message) = loaded {
        say!("socket-lab watch: {message}");
        std::process::exit(NO_FILTER_STATUS);
    }
    let Some((program, args)) = command.split_first() else {
        say!("socket-lab watch: no program given");
        std::process::exit(2);
    };
    // `watch` blocks the signals it forwards, and a blocked mask survives exec: the program
    // must get them as it would unwatched (Ctrl-C, SIGTERM).
    let _ = SigSet::all().thread_unblock();
    let error = Command::new(program)
        .args(args)
        .env("PYTHONPATH", python_path)
        .exec();
    let shown = program.to_string_lossy();
    // A shell's statuses: 127 when there is no such program, 126 when it cannot be run.
    let status = if error.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    let reason = if status == 127 {
        "no such program (is it on PATH, or did you mean ./".to_owned() + &shown + "?)"
    } else {
        error.to_string()
    };
    say!("socket-lab watch: cannot run '{shown}': {reason}");
    std::process::exit(status);
}

/// The signals `watch` passes on to the program rather than dying of.
fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(signal);
    }
    set
}

/// How long a program may take to end after `watch` is asked to stop, before it is killed.
const GRACE: Duration = Duration::from_secs(3);

/// Ends the program when `watch` itself is told to: SIGTERM (or SIGHUP) is passed on to every
/// watched process; Ctrl-C already reached the program from the terminal. Whatever is still
/// running after [`GRACE`] is killed, so nothing outlives `watch`.
fn forward_signals(signals: SigSet, live: Live) {
    std::thread::spawn(move || {
        let Ok(signal) = signals.wait() else {
            return;
        };
        let pids = |live: &Live| live.lock().map(|set| set.clone()).unwrap_or_default();
        if signal != Signal::SIGINT {
            for pid in pids(&live) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
            }
        }
        std::thread::sleep(GRACE);
        if signal == Signal::SIGINT {
            for pid in pids(&live) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            std::thread::sleep(GRACE);
        }
        for pid in pids(&live) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    });
}

fn signal_description(signal: Signal) -> &'static str {
    match signal {
        Signal::SIGSEGV => "segmentation fault",
        Signal::SIGABRT => "aborted",
        Signal::SIGKILL => "killed",
        Signal::SIGTERM => "terminated",
        Signal::SIGINT => "interrupted",
        Signal::SIGPIPE => "wrote to a connection the peer had closed",
        Signal::SIGBUS => "bus error",
        Signal::SIGFPE => "arithmetic error",
        _ => "a signal",
    }
}

/// Which events the table shows: the JSON has every one, but a `python3` that is a shell
/// shim (pyenv's) runs a dozen helper programs before Python starts, each with its exec, fork,
/// exit and SIGCHLD, and a student looking for their socket calls would read a screenful of
/// them first. The table shows a process's life (the program it executes, the fork that made
/// it, its signals, its end) only once the process makes a socket call, and then only the
/// last program it executed; the root process's end is always shown, and SIGCHLD (a child
/// ended) never.
#[derive(Debug)]
struct TableView {
    root: i32,
    /// The processes that have made a socket call.
    with_sockets: std::collections::HashSet<i32>,
    /// What the others did, held until they make one (or dropped when they end).
    held: std::collections::HashMap<i32, Vec<WatchEvent>>,
}

impl TableView {
    fn new(root: i32) -> Self {
        TableView {
            root,
            with_sockets: Default::default(),
            held: Default::default(),
        }
    }

    /// The events to print now, in order, for one that happened.
    fn shown(&mut self, event: WatchEvent) -> Vec<WatchEvent> {
        let pid = event.pid;
        match &event.what {
            What::Signal { signal } if signal == "SIGCHLD" => Vec::new(),
            What::Syscall { .. } => {
                let mut shown = Vec::new();
                if self.with_sockets.insert(pid) {
                    shown.extend(self.release(pid));
                }
                shown.push(event);
                shown
            }
            // A child is told with its own life, under its own pid, if it ever shows.
            What::Spawned {
                child,
                thread: false,
            } if !self.with_sockets.contains(child) => {
                self.held.entry(*child).or_default().push(event);
                Vec::new()
            }
            What::Exited { .. } | What::Killed { .. } => {
                let mut shown = Vec::new();
                if pid == self.root && !self.with_sockets.contains(&pid) {
                    shown.extend(self.release(pid));
                }
                self.held.remove(&pid);
                if pid == self.root || self.with_sockets.contains(&pid) {
                    shown.push(event);
                }
                shown
            }
            _ if self.with_sockets.contains(&pid) => vec![event],
            _ => {
                self.held.entry(pid).or_default().push(event);
                Vec::new()
            }
        }
    }

    /// What a process did before it showed, with only its last `exec` of the ones held.
    fn release(&mut self, pid: i32) -> Vec<WatchEvent> {
        let held = self.held.remove(&pid).unwrap_or_default();
        let last_exec = held
            .iter()
            .rposition(|event| matches!(event.what, What::Exec { .. }));
        held.into_iter()
            .enumerate()
            .filter(|(index, event)| {
                !matches!(event.what, What::Exec { .. }) || Some(*index) == last_exec
            })
            .map(|(_, event)| event)
            .collect()
    }
}

/// The table's header line.
fn table_header() -> String {
    format!(
        "{:>5}  {:>9}  {:>7}  {:>7}  {:<6}  CALL",
        "SEQ", "TIME_MS", "PID", "TID", "PHASE"
    )
}

/// One event as a line of the table, as `backend trace` writes a run's, with every control
/// character escaped: a path, a command line or a file name comes from the program, and a
/// terminal would obey the escape sequences in it.
fn table_row(event: &WatchEvent) -> String {
    without_controls(&raw_table_row(event))
}

/// `text` with every control character escaped, so that no terminal obeys it.
fn without_controls(text: &str) -> String {
    let mut shown = String::new();
    for c in text.chars() {
        if c.is_control() {
            shown.push_str(&c.escape_default().to_string());
        } else {
            shown.push(c);
        }
    }
    shown
}

fn raw_table_row(event: &WatchEvent) -> String {
    let (phase, text) = match &event.what {
        What::Syscall {
            syscall,
            fd,
            phase,
            args,
            result,
            out,
            error,
            python,
            kernel,
            ..
        } => {
            let mut call_args = args::Args::default();
            if let Some(fd) = fd {
                call_args.push("fd", args::Arg::Int((*fd).into()));
            }
            call_args.0.extend(args.0.iter().cloned());
            let mut text = format!("{syscall}({})", call_args.text());
            if let Some(result) = result {
                text.push_str(&format!(" = {result}"));
            }
            if !out.is_empty() {
                text.push_str(&format!("  [{}]", out.text()));
            }
            if let Some(error) = error {
                text.push_str(&format!(" ! {}", shared::describe::error_text(error)));
            }
            if let Some(python) = python {
                text.push_str(&format!("  <{}>", python.text()));
            }
            for view in kernel {
                text.push_str(&format!(
                    "  {{{} {}}}",
                    view.endpoint,
                    crate::trace::kernel_text(view)
                ));
            }
            let phase = match phase {
                Phase::Enter => "enter",
                Phase::Return => "return",
            };
            (phase, text)
        }
        What::Exec { program } => ("exec", program.clone()),
        What::Spawned {
            child,
            thread: true,
        } => ("thread", format!("started thread {child}")),
        What::Spawned {
            child,
            thread: false,
        } => ("fork", format!("started process {child}")),
        What::Signal { signal } => ("signal", format!("received {signal}")),
        What::Exited { code } => ("exit", format!("exited with status {code}")),
        What::Killed {
            signal,
            core_dumped,
        } => (
            "killed",
            format!(
                "killed by {signal}{}",
                if *core_dumped { " (core dumped)" } else { "" }
            ),
        ),
    };
    format!(
        "{:>5}  {:>9.3}  {:>7}  {:>7}  {:<6}  {text}",
        event.seq,
        event.t_us as f64 / 1000.0,
        event.pid,
        event.tid,
        phase
    )
}

/// One event as a line of JSON.
fn json_line(event: &WatchEvent) -> String {
    serde_json::to_string(event).unwrap_or_else(|error| {
        format!(
            "{{\"seq\": {}, \"event\": \"unwritable\", \"message\": \"{error}\"}}",
            event.seq
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, pid: i32, what: What) -> WatchEvent {
        WatchEvent {
            seq,
            t_us: 0,
            pid,
            tid: pid,
            what,
        }
    }

    fn exec(program: &str) -> What {
        What::Exec {
            program: program.to_owned(),
        }
    }

    fn socket_call() -> What {
        What::Syscall {
            syscall: "socket",
            fd: None,
            phase: Phase::Enter,
            args: args::Args::default(),
            result: None,
            out: args::Args::default(),
            error: None,
            python: None,
            kernel: Vec::new(),
            local: None,
            peer: None,
        }
    }

    #[test]
    fn the_table_shows_the_life_of_the_processes_with_sockets() {
        let mut table = TableView::new(1);
        let mut shown = Vec::new();
        let sigchld = || What::Signal {
            signal: "SIGCHLD".to_owned(),
        };
        for event in [
            // A shell shim: two execs, a helper that runs and ends, its SIGCHLD.
            event(0, 1, exec("bash shim python3")),
            event(
                1,
                1,
                What::Spawned {
                    child: 2,
                    thread: false,
                },
            ),
            event(2, 2, exec("readlink x")),
            event(3, 2, What::Exited { code: 0 }),
            event(4, 1, sigchld()),
            event(5, 1, exec("python3 server.py")),
            // Python, forking a child that makes a socket of its own.
            event(6, 1, socket_call()),
            event(
                7,
                1,
                What::Spawned {
                    child: 3,
                    thread: false,
                },
            ),
            event(8, 3, socket_call()),
            event(9, 3, What::Exited { code: 0 }),
            event(10, 1, sigchld()),
            event(11, 1, What::Exited { code: 0 }),
        ] {
            shown.extend(table.shown(event).into_iter().map(|event| event.seq));
        }
        assert_eq!(shown, vec![5, 6, 7, 8, 9, 11]);
        // A program that never makes a socket call still shows what ran and how it ended.
        let mut table = TableView::new(1);
        let mut shown = Vec::new();
        for event in [
            event(0, 1, exec("sh")),
            event(1, 1, exec("true")),
            event(2, 1, What::Exited { code: 0 }),
        ] {
            shown.extend(table.shown(event).into_iter().map(|event| event.seq));
        }
        assert_eq!(shown, vec![1, 2]);
    }

    #[test]
    fn a_programs_text_cannot_drive_the_terminal() {
        let event = WatchEvent {
            seq: 1,
            t_us: 0,
            pid: 1,
            tid: 1,
            what: What::Exec {
                program: "evil \u{1b}[2J\n\u{7}name".to_owned(),
            },
        };
        let row = table_row(&event);
        assert!(!row.chars().any(char::is_control), "{row:?}");
        assert!(row.contains("evil \\u{1b}[2J\\n\\u{7}name"), "{row}");
    }
}
