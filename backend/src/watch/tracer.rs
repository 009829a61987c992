//! The tracer: the watched program's parent, which stops it at each watched call (the
//! seccomp filter sends the stop), reads the call, and lets it go on.
//!
//! Every ptrace request must come from the thread that attached, so one thread runs the
//! whole of [`Tracer::run`]: it seizes the program, then waits for its stops and answers each.
//! A call enters at its seccomp stop; where Socket Lab shows it, the tracer resumes it with
//! `PTRACE_SYSCALL` to see it return, then with `PTRACE_CONT`, so nothing else stops the
//! program. Children (`fork`, threads, `vfork`) are traced from their first instruction
//! (`PTRACE_O_TRACEFORK` and the rest), and `PTRACE_O_EXITKILL` kills every traced process
//! if the tracer itself dies, so a watched program is never left stopped or untraced under a
//! filter that would fail its calls.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::ptrace::{self, Options};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use shared::{Phase, SocketView};

use super::args::Args;
use super::decode::{self, Entry, Memory};
use super::event::{WatchEvent, What};
use super::fds::FdTables;
use super::inject;
use super::kernel_view::KernelViews;
use super::python;

/// How the root process of the watched program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it.
    Killed(Signal),
}

impl Ending {
    /// The status a shell would give: the exit code, or 128 plus the signal's number.
    pub(crate) fn shell_status(self) -> i32 {
        match self {
            Ending::Exited(code) => code,
            Ending::Killed(signal) => 128 + signal as i32,
        }
    }
}

/// The most sockets whose kernel view a return event carries: each costs a `pidfd_getfd` and
/// two or three questions to the kernel, at every return.
const MAX_VIEWS: usize = 16;

/// The processes being traced, shared with the thread that forwards `watch`'s own signals.
pub(crate) type Live = Arc<Mutex<BTreeSet<i32>>>;

/// One traced thread.
#[derive(Debug)]
struct Thread {
    /// Its process (thread group).
    pid: i32,
    /// The watched call it is in, between its entry and its return.
    call: Option<Entry>,
    /// Where the thread's Python buffer is (see `python.rs`), once it has said.
    python_slot: Option<u64>,
}

/// The tracer's state, owned by its one thread.
pub(crate) struct Tracer<'a> {
    root: Pid,
    started: Instant,
    seq: u64,
    threads: HashMap<i32, Thread>,
    fds: FdTables,
    views: KernelViews,
    /// The sockets, by process and descriptor, whose addresses a return has reported.
    addressed: std::collections::HashSet<(i32, i32)>,
    live: Live,
    ending: Option<Ending>,
    /// The second stage of the filter, as the kernel reads it (see `filter.rs`).
    second_stage: Vec<u8>,
    /// The processes that have loaded it, or failed to (each tries once).
    second_stage_tried: std::collections::HashSet<i32>,
    /// Whether the root has executed the program yet: before, it is still the launcher, and
    /// the SIGCONT that woke it is the tracer's, not the program's.
    program_started: bool,
    emit: &'a mut dyn FnMut(WatchEvent),
}

impl std::fmt::Debug for Tracer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("root", &self.root)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// The ptrace options of every traced process.
fn options() -> Options {
    Options::PTRACE_O_TRACESECCOMP
        | Options::PTRACE_O_TRACESYSGOOD
        | Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_EXITKILL
}

/// Seizes `root`, which has stopped itself (`SIGSTOP`) before loading the filter, and lets it
/// go on. The error names what the system refused.
pub(crate) fn seize(root: Pid) -> Result<(), String> {
    match waitpid(root, Some(WaitPidFlag::WUNTRACED)) {
        Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => {}
        Ok(WaitStatus::Exited(_, code)) => {
            return Err(format!(
                "the program's launcher exited at once with status {code}"
            ));
        }
        Ok(other) => {
            return Err(format!(
                "the program's launcher did not stop as expected: {other:?}"
            ));
        }
        Err(error) => return Err(format!("waiting for the program's launcher: {error}")),
    }
    ptrace::seize(root, options()).map_err(|error| match error {
        Errno::EPERM => "ptrace is not allowed here (EPERM): this system forbids tracing even \
                         one's own child (a container without CAP_SYS_PTRACE, or \
                         /proc/sys/kernel/yama/ptrace_scope set to 3)"
            .to_owned(),
        other => format!("ptrace could not attach to the program: {other}"),
    })?;
    nix::sys::signal::kill(root, Signal::SIGCONT)
        .map_err(|error| format!("could not wake the program: {error}"))
}

impl<'a> Tracer<'a> {
    pub(crate) fn new(
        second_stage: Vec<u8>,
        root: Pid,
        started: Instant,
        live: Live,
        emit: &'a mut dyn FnMut(WatchEvent),
    ) -> Self {
        let pid = root.as_raw();
        let mut threads = HashMap::new();
        threads.insert(
            pid,
            Thread {
                pid,
                call: None,
                python_slot: None,
            },
        );
        if let Ok(mut live) = live.lock() {
            live.insert(pid);
        }
        Tracer {
            root,
            started,
            seq: 0,
            threads,
            fds: FdTables::default(),
            views: KernelViews::default(),
            addressed: Default::default(),
            live,
            ending: None,
            program_started: false,
            second_stage,
            second_stage_tried: Default::default(),
            emit,
        }
    }

    /// Answers every stop until no traced process is left; returns how the root ended.
    pub(crate) fn run(mut self) -> Result<Ending, String> {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD)) {
                Ok(status) => status,
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => break,
                Err(error) => return Err(format!("waiting for the watched program: {error}")),
            };
            self.on_status(status);
        }
        self.ending
            .ok_or_else(|| "the watched program vanished without an exit status".to_owned())
    }

    fn on_status(&mut self, status: WaitStatus) {
        match status {
            WaitStatus::PtraceEvent(tid, _, libc::PTRACE_EVENT_SECCOMP) => self.on_entry(tid),
            WaitStatus::PtraceSyscall(tid) => self.on_return(tid),
            WaitStatus::PtraceEvent(
                tid,
                _,
                event @ (libc::PTRACE_EVENT_FORK
                | libc::PTRACE_EVENT_VFORK
                | libc::PTRACE_EVENT_CLONE),
            ) => {
                if let Ok(child) = ptrace::getevent(tid) {
                    self.on_spawn(tid, child as i32, event == libc::PTRACE_EVENT_CLONE);
                }
                resume(tid, None);
            }
            WaitStatus::PtraceEvent(tid, _, libc::PTRACE_EVENT_EXEC) => {
                self.on_exec(tid);
                resume(tid, None);
            }
            WaitStatus::PtraceEvent(tid, signal, libc::PTRACE_EVENT_STOP) => {
                self.known(tid);
                if matches!(
                    signal,
                    Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU
                ) {
                    // A group stop (Ctrl-Z): the process stays stopped until SIGCONT, as it
                    // would unwatched.
                    listen(tid);
                } else {
                    // A new child's first stop, or the stop after a SIGCONT.
                    resume(tid, None);
                }
            }
            WaitStatus::PtraceEvent(tid, _, _) => resume(tid, None),
            WaitStatus::Stopped(tid, signal) => {
                let pid = self.known(tid);
                if self.program_started {
                    self.push(
                        pid,
                        tid.as_raw(),
                        What::Signal {
                            signal: signal.as_str().to_owned(),
                        },
                    );
                }
                resume(tid, Some(signal));
            }
            WaitStatus::Exited(tid, code) => self.on_gone(tid, Ending::Exited(code), false),
            WaitStatus::Signaled(tid, signal, core_dumped) => {
                self.on_gone(tid, Ending::Killed(signal), core_dumped);
            }
            WaitStatus::Continued(_) | WaitStatus::StillAlive => {}
        }
    }

    /// The process of thread `tid`, learnt from the kernel the first time it is seen.
    fn known(&mut self, tid: Pid) -> i32 {
        let raw = tid.as_raw();
        if let Some(thread) = self.threads.get(&raw) {
            return thread.pid;
        }
        let pid = thread_group(raw).unwrap_or(raw);
        self.threads.insert(
            raw,
            Thread {
                pid,
                call: None,
                python_slot: None,
            },
        );
        if pid == raw
            && let Ok(mut live) = self.live.lock()
        {
            live.insert(pid);
        }
        pid
    }

    fn on_entry(&mut self, tid: Pid) {
        let pid = self.known(tid);
        let Ok(regs) = ptrace::getregs(tid) else {
            // The thread is gone (killed meanwhile); its exit comes next.
            return;
        };
        let number = regs.orig_rax as i64;
        let raw = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
        let tid_raw = tid.as_raw();
        if number == libc::SYS_write && raw[0] as i32 == python::ANNOUNCE_FD {
            let bytes = Memory(tid).read(raw[1], (raw[2] as usize).min(python::MAX_ANNOUNCEMENT));
            if let (Some(address), Some(thread)) = (
                python::parse_announcement(&bytes),
                self.threads.get_mut(&tid_raw),
            ) {
                thread.python_slot = Some(address);
            }
            resume(tid, None);
            return;
        }
        if self.second_stage_tried.insert(pid) {
            // The process's first socket call: from now on, its calls on any descriptor
            // stop it too. The call itself is made again afterwards, and stops here again.
            if let Err(problem) = inject::load_filter(tid, regs, &self.second_stage) {
                say!(
                    "socket-lab watch: process {pid} could not load the filter of its read, \
                     write and close ({problem}); those calls on its sockets are not shown"
                );
            }
            resume(tid, None);
            return;
        }
        // Calls on descriptors that may be files go on at once unless the descriptor is a
        // socket; the calls that only change descriptors are followed to their return.
        let follows_fds = matches!(
            number,
            libc::SYS_dup
                | libc::SYS_dup2
                | libc::SYS_dup3
                | libc::SYS_close_range
                | libc::SYS_fcntl
                | libc::SYS_epoll_ctl
        );
        let on_socket =
            !decode::takes_fd(number) || self.fds.is_socket(pid, tid_raw, raw[0] as i32);
        if !on_socket && !follows_fds {
            resume(tid, None);
            return;
        }
        let fds = std::cell::RefCell::new(&mut self.fds);
        let mut entry = decode::entry(
            number,
            raw,
            Memory(tid),
            |fd| fds.borrow_mut().is_socket(pid, tid_raw, fd),
            |epfd| fds.borrow_mut().epoll_sockets(pid, tid_raw, epfd),
        );
        let shown = on_socket && shows(&entry);
        entry.shown = shown;
        if shown {
            let mut what = syscall_event(&entry, Phase::Enter, entry.args.clone(), None, None);
            self.add_python(tid_raw, &mut what);
            if let What::Syscall { python, .. } = &what {
                entry.python.clone_from(python);
            }
            self.push(pid, tid_raw, what);
        }
        if let Some(thread) = self.threads.get_mut(&tid_raw) {
            thread.call = Some(entry);
        }
        // To its return; a thread gone meanwhile reports its exit next.
        let _ = ptrace::syscall(tid, None);
    }

    fn on_return(&mut self, tid: Pid) {
        let tid_raw = tid.as_raw();
        let pid = self.known(tid);
        let Some(entry) = self
            .threads
            .get_mut(&tid_raw)
            .and_then(|thread| thread.call.take())
        else {
            resume(tid, None);
            return;
        };
        let Ok(regs) = ptrace::getregs(tid) else {
            return;
        };
        let value = regs.rax as i64;
        let failed = (-4095..0).contains(&value);
        if !failed {
            self.follow_fds(pid, &entry, value);
        }
        if entry.shown {
            let mut what = if failed {
                let error = errno_error(-value as i32);
                syscall_event(&entry, Phase::Return, Args::default(), None, Some(error))
            } else {
                let out = decode::exit(&entry, value, Memory(tid));
                syscall_event(&entry, Phase::Return, out, Some(value), None)
            };
            if let What::Syscall {
                kernel,
                local,
                peer,
                ..
            } = &mut what
            {
                *kernel = self.views_after(pid, &entry, (!failed).then_some(value));
                if let Some(fd) = self.addressed_fd(pid, &entry, value, failed) {
                    (*local, *peer) = self.views.addresses(pid, fd);
                }
            }
            // The Python call read at entry is still the one running: not read again.
            if let What::Syscall { python, .. } = &mut what {
                python.clone_from(&entry.python);
            }
            self.push(pid, tid_raw, what);
        }
        if entry.number == libc::SYS_close && !failed {
            self.fds.forget(pid, entry.raw[0] as i32);
            self.addressed.remove(&(pid, entry.raw[0] as i32));
        }
        resume(tid, None);
    }

    /// Names the Python call the thread is in, read from its buffer.
    fn add_python(&self, tid: i32, what: &mut What) {
        if let What::Syscall { python, .. } = what
            && let Some(address) = self.threads.get(&tid).and_then(|thread| thread.python_slot)
        {
            let slot = Memory(Pid::from_raw(tid)).read(address, python::SLOT_SIZE);
            *python = python::parse_slot(&slot);
        }
    }

    /// The kernel's view, after a call, of every socket of the process: its own first (unless
    /// the call closed it), then the socket it made (`socket`, `accept`), then the others, at
    /// most [`MAX_VIEWS`] in all; after a send or a receive, of its own socket alone.
    fn views_after(&mut self, pid: i32, entry: &Entry, value: Option<i64>) -> Vec<SocketView> {
        let closed = (entry.number == libc::SYS_close && value.is_some()).then_some(entry.fd);
        let mut fds = Vec::new();
        if let Some(fd) = entry.fd
            && closed.is_none()
        {
            fds.push(fd);
        }
        if let Some(made) = value
            && matches!(
                entry.number,
                libc::SYS_socket | libc::SYS_accept | libc::SYS_accept4
            )
        {
            fds.push(made as i32);
        }
        // A call that only moves data changes its own socket's queues, and a program in a
        // send/recv loop would otherwise pay for every other socket's view at every call.
        let moves_data = matches!(
            entry.number,
            libc::SYS_sendto
                | libc::SYS_recvfrom
                | libc::SYS_sendmsg
                | libc::SYS_recvmsg
                | libc::SYS_sendmmsg
                | libc::SYS_recvmmsg
                | libc::SYS_read
                | libc::SYS_write
        );
        if !moves_data {
            for fd in self.fds.sockets(pid) {
                if fds.len() >= MAX_VIEWS {
                    break;
                }
                if !fds.contains(&fd) && closed != Some(Some(fd)) {
                    fds.push(fd);
                }
            }
        }
        fds.into_iter()
            .filter_map(|fd| self.views.view(pid, fd))
            .collect()
    }

    /// The socket whose addresses a return reports: the one a call named or connected (or
    /// the connection `accept` made), and the one of a process's first call on it, so that
    /// a page knows every socket's address pair without asking at every send.
    fn addressed_fd(&mut self, pid: i32, entry: &Entry, value: i64, failed: bool) -> Option<i32> {
        let in_progress = failed && -value == i64::from(libc::EINPROGRESS);
        let fd = match entry.number {
            libc::SYS_accept | libc::SYS_accept4 if !failed => value as i32,
            libc::SYS_bind | libc::SYS_listen | libc::SYS_getsockname | libc::SYS_getpeername
                if !failed =>
            {
                entry.fd?
            }
            libc::SYS_connect if !failed || in_progress => entry.fd?,
            libc::SYS_close | libc::SYS_socket | libc::SYS_socketpair => return None,
            _ if failed => return None,
            _ => {
                let fd = entry.fd?;
                if self.addressed.contains(&(pid, fd)) {
                    return None;
                }
                fd
            }
        };
        self.addressed.insert((pid, fd));
        Some(fd)
    }

    /// Keeps the table of socket descriptors true after a call that made or moved one.
    fn follow_fds(&mut self, pid: i32, entry: &Entry, value: i64) {
        let [a0, a1, _, a3, _, _] = entry.raw;
        let fd = value as i32;
        match entry.number {
            libc::SYS_socket | libc::SYS_accept | libc::SYS_accept4 => {
                self.fds.opened_socket(pid, fd);
            }
            libc::SYS_socketpair => {
                let pair = Memory(Pid::from_raw(pid)).read(a3, 8);
                for chunk in pair.chunks_exact(4) {
                    if let Ok(bytes) = chunk.try_into() {
                        self.fds.opened_socket(pid, i32::from_ne_bytes(bytes));
                    }
                }
            }
            libc::SYS_dup | libc::SYS_dup2 | libc::SYS_dup3 | libc::SYS_fcntl => {
                let is_dup = entry.number != libc::SYS_fcntl || a1 as i32 != libc::F_SETFL;
                if is_dup {
                    self.fds.forget(pid, fd);
                    if entry.shown || self.fds.sockets(pid).contains(&(a0 as i32)) {
                        self.fds.opened_socket(pid, fd);
                    }
                }
            }
            libc::SYS_close_range => self.fds.forget_range(pid, a0 as u32, a1 as u32),
            libc::SYS_epoll_ctl => {
                self.fds
                    .epoll_ctl(pid, a0 as i32, a1 as i32, entry.raw[2] as i32);
            }
            _ => {}
        }
    }

    fn on_spawn(&mut self, parent: Pid, child: i32, clone: bool) {
        let pid = self.known(parent);
        // A clone may be a thread (CLONE_THREAD) or a process (posix_spawn's clone); the
        // kernel says which.
        let child_pid = thread_group(child).unwrap_or(if clone { pid } else { child });
        let thread = child_pid == pid;
        // A forked child's memory is a copy of its parent's, the forking thread's Python
        // buffer and all; a new thread makes its own.
        let inherited = if thread {
            None
        } else {
            self.threads
                .get(&parent.as_raw())
                .and_then(|t| t.python_slot)
        };
        let entry = self.threads.entry(child).or_insert(Thread {
            pid: child_pid,
            call: None,
            python_slot: None,
        });
        entry.pid = child_pid;
        entry.python_slot = inherited;
        if !thread {
            self.fds.fork(pid, child_pid);
            // Filters are inherited: a child of a process that has the second stage has it.
            if self.second_stage_tried.contains(&pid) {
                self.second_stage_tried.insert(child_pid);
            }
            if let Ok(mut live) = self.live.lock() {
                live.insert(child_pid);
            }
        }
        self.push(pid, parent.as_raw(), What::Spawned { child, thread });
    }

    fn on_exec(&mut self, tid: Pid) {
        let pid = self.known(tid);
        self.program_started = true;
        self.fds.forget_all(pid);
        let program = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|bytes| {
                bytes
                    .split(|&b| b == 0)
                    .filter(|part| !part.is_empty())
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        self.push(pid, tid.as_raw(), What::Exec { program });
    }

    fn on_gone(&mut self, tid: Pid, ending: Ending, core_dumped: bool) {
        let raw = tid.as_raw();
        let pid = self.threads.remove(&raw).map_or(raw, |thread| thread.pid);
        if pid != raw {
            // A thread ended; its process goes on.
            return;
        }
        self.fds.remove(pid);
        self.views.forget(pid);
        if let Ok(mut live) = self.live.lock() {
            live.remove(&pid);
        }
        let what = match ending {
            Ending::Exited(code) => What::Exited { code },
            Ending::Killed(signal) => What::Killed {
                signal: signal.as_str().to_owned(),
                core_dumped,
            },
        };
        self.push(pid, raw, what);
        if tid == self.root {
            self.ending = Some(ending);
        }
    }

    fn push(&mut self, pid: i32, tid: i32, what: What) {
        let event = WatchEvent {
            seq: self.seq,
            t_us: self.started.elapsed().as_micros() as u64,
            pid,
            tid,
            what,
        };
        self.seq += 1;
        (self.emit)(event);
    }
}

/// The event of a shown call entering (with its arguments) or returning (with what it
/// wrote back, and its result or error).
fn syscall_event(
    entry: &Entry,
    phase: Phase,
    decoded: Args,
    result: Option<i64>,
    error: Option<shared::CallError>,
) -> What {
    let (args, out) = match phase {
        Phase::Enter => (decoded, Args::default()),
        Phase::Return => (Args::default(), decoded),
    };
    What::Syscall {
        syscall: entry.name,
        fd: entry.fd,
        phase,
        args,
        result,
        out,
        error,
        python: None,
        kernel: Vec::new(),
        local: None,
        peer: None,
    }
}

/// Whether a call is shown: every watched call on a socket, but `fcntl` only when it sets
/// flags (a duplicated descriptor is followed, not shown), and `poll`/`select` only when
/// they wait on a socket.
fn shows(entry: &Entry) -> bool {
    use super::args::Arg;
    match entry.number {
        libc::SYS_dup
        | libc::SYS_dup2
        | libc::SYS_dup3
        | libc::SYS_close_range
        | libc::SYS_epoll_ctl => false,
        libc::SYS_fcntl => entry.raw[1] as i32 == libc::F_SETFL,
        libc::SYS_poll
        | libc::SYS_ppoll
        | libc::SYS_select
        | libc::SYS_pselect6
        | libc::SYS_epoll_wait
        | libc::SYS_epoll_pwait
        | libc::SYS_epoll_pwait2 => entry
            .args
            .0
            .iter()
            .any(|(_, arg)| matches!(arg, Arg::Fds(fds) if !fds.is_empty())),
        _ => true,
    }
}

/// The thread group (process) of thread `tid`, from `/proc/TID/status`.
fn thread_group(tid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:"))
        .and_then(|value| value.trim().parse().ok())
}

/// The error of a failed call, as the page shows errors.
fn errno_error(code: i32) -> shared::CallError {
    // The kernel's own codes for a call a signal interrupted, which the program never sees
    // (the call restarts, or fails with EINTR); strace names them the same way.
    let restart = match code {
        512 => "ERESTARTSYS",
        513 => "ERESTARTNOINTR",
        514 => "ERESTARTNOHAND",
        516 => "ERESTART_RESTARTBLOCK",
        _ => return crate::lab::errno::from_code(code),
    };
    shared::CallError {
        errno: restart.to_owned(),
        code,
        message: "interrupted by a signal (to be restarted or to fail with EINTR)".to_owned(),
        origin: shared::ErrorOrigin::Kernel,
    }
}

/// Lets a stopped thread run on, with `signal` delivered; a thread that is gone is ignored
/// (its exit is reported next).
fn resume(tid: Pid, signal: Option<Signal>) {
    let _ = ptrace::cont(tid, signal);
}

/// Leaves a thread in its group stop, to be woken by SIGCONT (`PTRACE_LISTEN`).
fn listen(tid: Pid) {
    // nix has no wrapper for PTRACE_LISTEN.
    #[allow(unsafe_code)]
    // SAFETY: PTRACE_LISTEN takes no pointer (addr and data are 0); it acts only on our own
    // tracee, and fails with ESRCH if the thread is gone.
    let _ = unsafe { libc::ptrace(libc::PTRACE_LISTEN, tid.as_raw(), 0, 0) };
}
