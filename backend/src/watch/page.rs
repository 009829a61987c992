//! A watched program's events as the page draws them: each process a role, each socket an
//! endpoint, each system call the tutorial's call it does, with the kernel's name beside it.
//!
//! The tracer's [`WatchEvent`]s name descriptors and system calls; the page names endpoints
//! and the tutorial's calls, and draws bytes from a `send` to the `recv` that took them by
//! the sockets' address pairs. [`PageFeed`] keeps what it needs to say one in the other's
//! words: which socket each descriptor of each process is now (a descriptor number is used
//! again after `close`), each socket's addresses (inherited by a forked child), the call each
//! thread is in, and which Python files the page has been sent.
//!
//! A process's role is its program's name and pid, `server.py[4242]` (a Python script by
//! its script's name), and its sockets are `server.py[4242].fd3`, then `fd3#2` for the next
//! socket that gets descriptor 3.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use shared::{
    Bytes, Call, CallResult, Event, Family, Phase, ReturnValue, RoleProgram, Shutdown, SockAddr,
    SockOption, SockType, Watched,
};

use super::args::{Arg, Args};
use super::event::{WatchEvent, What};
use crate::hub::Item;
use crate::hub::handin::MAX_SOURCE;

/// The most Python files of one process whose source is sent to the page.
const MAX_FILES_PER_PROCESS: usize = 16;

/// What the feed knows of one socket of one process.
#[derive(Clone, Debug)]
struct Endpoint {
    name: String,
    local: Option<SockAddr>,
    peer: Option<SockAddr>,
    /// Whether an event has told the page the addresses above.
    told: bool,
    /// Whether it is a stream socket (made by `socket(..., SOCK_STREAM)` or `accept`).
    stream: bool,
}

/// Turns a watched program's events into the page's.
#[derive(Debug, Default)]
pub(crate) struct PageFeed {
    /// Each process's last executed command line.
    commands: HashMap<i32, String>,
    /// Each process's role, named at its first socket call.
    roles: HashMap<i32, String>,
    /// The sockets of each process by descriptor.
    endpoints: HashMap<(i32, i32), Endpoint>,
    /// How many sockets each descriptor of each process has been.
    generations: HashMap<(i32, i32), u32>,
    /// The call each thread has entered: its return is told as the same call.
    open: HashMap<i32, OpenCall>,
    /// The Python files sent as programs, by process.
    files: HashMap<i32, HashSet<String>>,
    /// The first process's end, in words, and whether it ended well.
    ending: Option<(String, bool)>,
    root: Option<i32>,
    /// When `watch` started the program, on the monotonic clock: the page's events are
    /// timed on that clock, which every `watch` of the machine shares (see `crate::hub`).
    clock_base_us: u64,
}

#[derive(Debug)]
struct OpenCall {
    call: Call,
    /// A `socket()`'s enter waits for its return, which names the new descriptor.
    held: Option<Event>,
}

impl PageFeed {
    /// A feed for a program started `since` ago.
    pub(crate) fn new(since: std::time::Duration) -> Self {
        let since = u64::try_from(since.as_micros()).unwrap_or(0);
        PageFeed {
            clock_base_us: crate::hub::monotonic_us().saturating_sub(since),
            ..Default::default()
        }
    }

    /// The monotonic clock's reading, in microseconds, at `watch`'s start: an event's
    /// `t_us` is this plus its time since.
    pub(crate) fn clock_base_us(&self) -> u64 {
        self.clock_base_us
    }

    /// The page's events and programs for one watched event, in order.
    pub(crate) fn feed(&mut self, event: &WatchEvent) -> Vec<Item> {
        let pid = event.pid;
        if self.root.is_none() {
            self.root = Some(pid);
        }
        match &event.what {
            What::Exec { program } => {
                self.commands.insert(pid, program.clone());
                Vec::new()
            }
            What::Spawned {
                child,
                thread: false,
            } => {
                // A forked child has its parent's program and sockets, with their addresses,
                // which its first call on each tells the page again under its own name.
                if let Some(command) = self.commands.get(&pid).cloned() {
                    self.commands.insert(*child, command);
                }
                let inherited: Vec<(i32, Endpoint)> = self
                    .endpoints
                    .iter()
                    .filter(|((owner, _), _)| *owner == pid)
                    .map(|((_, fd), endpoint)| (*fd, endpoint.clone()))
                    .collect();
                for (fd, endpoint) in inherited {
                    let name = self.new_endpoint(*child, fd);
                    let socket = self.endpoints.entry((*child, fd)).or_insert(endpoint);
                    socket.name = name;
                    socket.told = false;
                }
                Vec::new()
            }
            What::Exited { code } => {
                self.end(event, &format!("exited with status {code}"), *code == 0)
            }
            What::Killed {
                signal,
                core_dumped,
            } => {
                let core = if *core_dumped { " (core dumped)" } else { "" };
                self.end(event, &format!("was killed by {signal}{core}"), false)
            }
            What::Syscall { .. } => self.syscall(event),
            What::Spawned { .. } | What::Signal { .. } => Vec::new(),
        }
    }

    /// How the first process ended, once it has: the run's last word from this `watch`.
    pub(crate) fn ending(&self) -> Option<(String, bool)> {
        self.ending.clone()
    }

    /// A process ended: for one that made socket calls, the event that tells the page its
    /// sockets are closed.
    fn end(&mut self, event: &WatchEvent, how: &str, ok: bool) -> Vec<Item> {
        let pid = event.pid;
        let role = self.roles.get(&pid).cloned();
        if self.root == Some(pid) {
            let who = role.clone().unwrap_or_else(|| self.role_name(pid));
            self.ending = Some((format!("{who} {how}"), ok));
        }
        self.endpoints.retain(|(owner, _), _| *owner != pid);
        self.files.remove(&pid);
        let Some(role) = role else {
            return Vec::new();
        };
        let mut ended = Event::enter(
            &role,
            &role,
            None,
            Call::Other {
                text: how.to_owned(),
            },
        );
        ended.phase = Phase::Return;
        ended.t_us = self.clock_base_us + event.t_us;
        ended.watched = Some(Watched {
            pid: pid.unsigned_abs(),
            tid: event.tid.unsigned_abs(),
            syscall: if ok || how.starts_with("exited") {
                "exit_group".to_owned()
            } else {
                String::new()
            },
            process_ended: true,
            ..Default::default()
        });
        vec![Item::Event(ended)]
    }

    fn role(&mut self, pid: i32) -> String {
        if let Some(role) = self.roles.get(&pid) {
            return role.clone();
        }
        let role = self.role_name(pid);
        self.roles.insert(pid, role.clone());
        role
    }

    fn role_name(&self, pid: i32) -> String {
        let name = self
            .commands
            .get(&pid)
            .map_or_else(|| "process".to_owned(), |command| program_name(command));
        format!("{name}[{pid}]")
    }

    /// A new socket on descriptor `fd` of process `pid`: its endpoint's name.
    fn new_endpoint(&mut self, pid: i32, fd: i32) -> String {
        let role = self.role(pid);
        let generation = self.generations.entry((pid, fd)).or_insert(0);
        *generation += 1;
        match *generation {
            1 => format!("{role}.fd{fd}"),
            n => format!("{role}.fd{fd}#{n}"),
        }
    }

    /// The endpoint of descriptor `fd` of process `pid`, made if the feed has not seen it
    /// made (a socket the program was started with).
    fn endpoint(&mut self, pid: i32, fd: i32) -> &mut Endpoint {
        if !self.endpoints.contains_key(&(pid, fd)) {
            let name = self.new_endpoint(pid, fd);
            self.endpoints.insert(
                (pid, fd),
                Endpoint {
                    name,
                    local: None,
                    peer: None,
                    told: false,
                    stream: false,
                },
            );
        }
        self.endpoints
            .get_mut(&(pid, fd))
            .expect("the endpoint was just made")
    }

    fn syscall(&mut self, watched: &WatchEvent) -> Vec<Item> {
        let What::Syscall {
            syscall,
            fd,
            phase,
            args,
            result,
            out,
            error,
            python,
            kernel,
            local,
            peer,
        } = &watched.what
        else {
            return Vec::new();
        };
        let (pid, tid) = (watched.pid, watched.tid);
        let role = self.role(pid);
        let mut items = Vec::new();
        let (line, file) = match python {
            Some(python) => {
                if let Some(program) = self.program_of(pid, &role, &python.file) {
                    items.push(Item::Program(program));
                }
                (Some(python.line), Some(python.file.clone()))
            }
            None => (None, None),
        };
        let details = Watched {
            pid: pid.unsigned_abs(),
            tid: tid.unsigned_abs(),
            syscall: (*syscall).to_owned(),
            fd: *fd,
            python: python.as_ref().map(|python| python.call.clone()),
            file,
            process_ended: false,
        };
        let makes_socket = matches!(*syscall, "socket" | "socketpair");
        match phase {
            Phase::Enter => {
                let mut call = enter_call(syscall, args);
                // `recvfrom` is also how Python's `recv()` and C's `recv()` read: on a stream
                // socket, or when Python says so, it is the tutorial's `recv`.
                if let Call::Recvfrom { bufsize } = call {
                    let python_recv = python
                        .as_ref()
                        .is_some_and(|python| !python.call.starts_with("recvfrom"));
                    let stream = fd
                        .and_then(|fd| self.endpoints.get(&(pid, fd)))
                        .is_some_and(|endpoint| endpoint.stream);
                    if python_recv || (python.is_none() && stream) {
                        call = Call::Recv { bufsize };
                    }
                }
                let endpoint = match fd {
                    Some(fd) => self.endpoint(pid, *fd).name.clone(),
                    None => format!("{role}.new"),
                };
                let mut event = Event::enter(&role, &endpoint, line, call.clone());
                event.t_us = self.clock_base_us + watched.t_us;
                event.watched = Some(details);
                let held = makes_socket.then(|| event.clone());
                self.open.insert(tid, OpenCall { call, held });
                if !makes_socket {
                    items.push(Item::Event(event));
                }
            }
            Phase::Return => {
                let open = self.open.remove(&tid);
                let call = open.as_ref().map_or_else(
                    || enter_call(syscall, &Args::default()),
                    |open| open.call.clone(),
                );
                // The sockets the call made, named now that the kernel has given them numbers.
                let made_fds = match (*syscall, result, arg(out, "fds")) {
                    ("socket", Some(new), _) => vec![*new as i32],
                    ("socketpair", Some(_), Some(Arg::Fds(fds))) => fds.clone(),
                    _ => Vec::new(),
                };
                for &new in &made_fds {
                    self.new_socket(pid, new);
                }
                let made = made_fds.first().copied();
                let endpoint = match (fd, made) {
                    (Some(fd), _) => self.endpoint(pid, *fd).name.clone(),
                    (None, Some(new)) => self.endpoint(pid, new).name.clone(),
                    (None, None) => format!("{role}.new"),
                };
                if let Some(mut held) = open.and_then(|open| open.held) {
                    held.endpoint = endpoint.clone();
                    items.push(Item::Event(held));
                }
                let mut event = Event::enter(&role, &endpoint, line, call.clone());
                event.phase = Phase::Return;
                event.t_us = self.clock_base_us + watched.t_us;
                event.watched = Some(details);
                match (result, error) {
                    (_, Some(error)) => event.error = Some(error.clone()),
                    (Some(value), None) => {
                        event.result = Some(self.result(
                            pid,
                            &call,
                            syscall,
                            *value,
                            out,
                            (*fd).or(made),
                            (local, peer),
                        ));
                        if let Call::Other { .. } = call {
                            event.call = Call::Other {
                                text: if out.is_empty() {
                                    format!("returned {value}")
                                } else {
                                    out.text()
                                },
                            };
                        }
                    }
                    (None, None) => {}
                }
                // After the result, which names a connection `accept` made.
                event.kernel = kernel
                    .iter()
                    .map(|view| {
                        let mut view = view.clone();
                        if let Some(number) = view.endpoint.strip_prefix("fd")
                            && let Ok(number) = number.parse::<i32>()
                        {
                            view.endpoint = self.endpoint(pid, number).name.clone();
                        }
                        view
                    })
                    .collect();
                if *syscall == "close"
                    && error.is_none()
                    && let Some(fd) = fd
                {
                    self.endpoints.remove(&(pid, *fd));
                }
                items.push(Item::Event(event));
            }
        }
        items
    }

    /// Descriptor `fd` of `pid` is a new socket now: the old one's record goes, and the new
    /// one is the descriptor's next endpoint.
    fn new_socket(&mut self, pid: i32, fd: i32) -> &mut Endpoint {
        self.endpoints.remove(&(pid, fd));
        self.endpoint(pid, fd)
    }

    #[allow(clippy::too_many_arguments)] // One call's whole return, read in one place.
    fn result(
        &mut self,
        pid: i32,
        call: &Call,
        syscall: &str,
        value: i64,
        out: &Args,
        fd: Option<i32>,
        (local, peer): (&Option<SockAddr>, &Option<SockAddr>),
    ) -> CallResult {
        let mut result = CallResult {
            value: ReturnValue::None,
            fd,
            local: None,
            peer: None,
            peer_process: None,
        };
        let received = || match arg(out, "data") {
            Some(Arg::Data(data)) => Some(data.clone()),
            _ => None,
        };
        result.value = match (call, syscall) {
            (Call::Socket { sock_type, .. }, _) => {
                if let Some(fd) = fd {
                    self.endpoint(pid, fd).stream = *sock_type == SockType::Stream;
                }
                ReturnValue::Socket
            }
            (Call::Accept, _) => {
                let new = value as i32;
                let address = match arg(out, "address") {
                    Some(Arg::Address(address)) => address.clone(),
                    _ => peer.clone().unwrap_or(SockAddr::Unix {
                        path: String::new(),
                        r#abstract: false,
                    }),
                };
                let endpoint = self.new_socket(pid, new);
                endpoint.local = local.clone();
                endpoint.peer = Some(address.clone());
                endpoint.told = true;
                endpoint.stream = true;
                ReturnValue::Accepted {
                    endpoint: endpoint.name.clone(),
                    fd: new,
                    address,
                    process: None,
                }
            }
            (Call::Send { .. } | Call::Sendto { .. }, _) => ReturnValue::Sent {
                count: value.max(0) as usize,
            },
            (Call::Getsockname | Call::Getpeername, _) => match arg(out, "address") {
                Some(Arg::Address(address)) => ReturnValue::Address {
                    address: address.clone(),
                },
                _ => ReturnValue::None,
            },
            _ => match received() {
                Some(data) => ReturnValue::Received {
                    data,
                    from: match arg(out, "from") {
                        Some(Arg::Address(from)) if syscall != "read" => Some(from.clone()),
                        _ => None,
                    },
                    truncated_from: None,
                },
                None => ReturnValue::None,
            },
        };
        // The addresses, when the tracer read them or the page has not been told them.
        if let Some(fd) = fd
            && !matches!(call, Call::Accept | Call::Close)
        {
            let endpoint = self.endpoint(pid, fd);
            if local.is_some() || peer.is_some() {
                endpoint.local = local.clone().or(endpoint.local.take());
                endpoint.peer = peer.clone().or(endpoint.peer.take());
                endpoint.told = false;
            }
            if !endpoint.told {
                result.local = endpoint.local.clone();
                result.peer = endpoint.peer.clone();
                endpoint.told = true;
            }
        }
        result
    }

    /// The program of `file`, for a process's first call from it: its source, read now.
    fn program_of(&mut self, pid: i32, role: &str, file: &str) -> Option<RoleProgram> {
        let files = self.files.entry(pid).or_default();
        if files.contains(file) || files.len() >= MAX_FILES_PER_PROCESS {
            return None;
        }
        files.insert(file.to_owned());
        let code = read_source(pid, file)?;
        Some(RoleProgram {
            role: role.to_owned(),
            code,
            outside: false,
            file: Some(file.to_owned()),
        })
    }
}

/// A Python file's source, as the process names it (relative to its own directory), at
/// most [`MAX_SOURCE`] bytes of it; `None` for a file that cannot be read (`<stdin>`).
fn read_source(pid: i32, file: &str) -> Option<String> {
    let path = Path::new(file);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        let cwd = PathBuf::from(format!("/proc/{pid}/cwd"));
        if cwd.join(path).is_file() {
            cwd.join(path)
        } else {
            path.to_path_buf()
        }
    };
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_SOURCE as u64).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The name a process's role is given from its command line: a Python script's file name
/// (`python3 -u server.py` is `server.py`, `python3 -m http.server` is `http.server`),
/// otherwise the program's (`nc`).
fn program_name(command: &str) -> String {
    let mut words = command.split_whitespace();
    let program = words.next().unwrap_or("process");
    let base = program.rsplit('/').next().unwrap_or(program);
    if base.starts_with("python") {
        let mut words = words.peekable();
        while let Some(word) = words.next() {
            if word == "-m" {
                if let Some(module) = words.next() {
                    return module.to_owned();
                }
            } else if word == "-c" {
                return base.to_owned();
            } else if !word.starts_with('-') {
                return word.rsplit('/').next().unwrap_or(word).to_owned();
            }
        }
    }
    base.to_owned()
}

/// The argument named `name`.
fn arg<'a>(args: &'a Args, name: &str) -> Option<&'a Arg> {
    args.0
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn named<'a>(args: &'a Args, name: &str) -> Option<&'a str> {
    match arg(args, name)? {
        Arg::Name(text) => Some(text),
        _ => None,
    }
}

fn int(args: &Args, name: &str) -> Option<i64> {
    match arg(args, name)? {
        Arg::Int(value) => Some(*value),
        _ => None,
    }
}

fn address(args: &Args) -> Option<SockAddr> {
    match arg(args, "address")? {
        Arg::Address(address) => Some(address.clone()),
        _ => None,
    }
}

fn data(args: &Args) -> Bytes {
    match arg(args, "data") {
        Some(Arg::Data(data)) => data.clone(),
        _ => Bytes(Vec::new()),
    }
}

/// The tutorial's call that a system call, entering with `args`, does.
fn enter_call(syscall: &str, args: &Args) -> Call {
    let other = || Call::Other { text: args.text() };
    match syscall {
        "socket" => {
            let family = named(args, "family")
                .and_then(|name| Family::ALL.into_iter().find(|f| f.name() == name));
            let sock_type = named(args, "type")
                .and_then(|name| name.split('|').next())
                .and_then(|name| SockType::ALL.into_iter().find(|t| t.name() == name));
            match (family, sock_type) {
                (Some(family), Some(sock_type)) => Call::Socket { family, sock_type },
                _ => other(),
            }
        }
        "bind" => address(args).map_or_else(other, |address| Call::Bind { address }),
        "connect" => address(args).map_or_else(other, |address| Call::Connect { address }),
        "listen" => int(args, "backlog").map_or_else(other, |backlog| Call::Listen {
            backlog: backlog as i32,
        }),
        "accept" | "accept4" => Call::Accept,
        "sendto" | "sendmsg" | "write" => match address(args) {
            Some(address) => Call::Sendto {
                data: data(args),
                address,
            },
            None => Call::Send { data: data(args) },
        },
        "recvfrom" => Call::Recvfrom {
            bufsize: int(args, "bufsize").unwrap_or(0).max(0) as usize,
        },
        "read" => Call::Recv {
            bufsize: int(args, "bufsize").unwrap_or(0).max(0) as usize,
        },
        "shutdown" => match named(args, "how") {
            Some(how) => Shutdown::ALL
                .into_iter()
                .find(|known| known.name() == how)
                .map_or_else(other, |how| Call::Shutdown { how }),
            None => other(),
        },
        "close" => Call::Close,
        "getsockname" => Call::Getsockname,
        "getpeername" => Call::Getpeername,
        "setsockopt" => {
            let value = int(args, "value");
            let option = match (named(args, "option"), value) {
                (Some("SO_REUSEADDR"), Some(on)) => Some(SockOption::ReuseAddr(on != 0)),
                (Some("TCP_NODELAY"), Some(on)) => Some(SockOption::NoDelay(on != 0)),
                (Some("SO_RCVBUF"), Some(size)) => {
                    u32::try_from(size).ok().map(SockOption::RecvBuffer)
                }
                (Some("SO_SNDBUF"), Some(size)) => {
                    u32::try_from(size).ok().map(SockOption::SendBuffer)
                }
                _ => None,
            };
            option.map_or_else(other, |option| Call::Setsockopt { option })
        }
        "fcntl" if named(args, "command") == Some("F_SETFL") => Call::Setblocking {
            flag: !named(args, "flags").is_some_and(|flags| flags.contains("O_NONBLOCK")),
        },
        _ => other(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::python::PythonCall;

    fn syscall(pid: i32, name: &'static str, fd: Option<i32>, phase: Phase) -> WatchEvent {
        WatchEvent {
            seq: 0,
            t_us: 10,
            pid,
            tid: pid,
            what: What::Syscall {
                syscall: name,
                fd,
                phase,
                args: Args::default(),
                result: None,
                out: Args::default(),
                error: None,
                python: None,
                kernel: Vec::new(),
                local: None,
                peer: None,
            },
        }
    }

    fn with(
        mut event: WatchEvent,
        change: impl FnOnce(&mut Args, &mut Args, &mut Option<i64>),
    ) -> WatchEvent {
        if let What::Syscall {
            args, out, result, ..
        } = &mut event.what
        {
            change(args, out, result);
        }
        event
    }

    fn events(items: Vec<Item>) -> Vec<Event> {
        items
            .into_iter()
            .filter_map(|item| match item {
                Item::Event(event) => Some(event),
                _ => None,
            })
            .collect()
    }

    fn addr(port: u16) -> SockAddr {
        SockAddr::Inet {
            host: std::net::Ipv4Addr::LOCALHOST,
            port,
        }
    }

    #[test]
    fn names_come_from_the_script_or_the_program() {
        assert_eq!(program_name("python3 -u server.py 9000"), "server.py");
        assert_eq!(
            program_name("/usr/bin/python3.11 /home/a/client.py"),
            "client.py"
        );
        assert_eq!(program_name("python3 -m http.server"), "http.server");
        assert_eq!(program_name("python3 -c import socket"), "python3");
        assert_eq!(program_name("/bin/nc -l 9000"), "nc");
    }

    #[test]
    fn a_socket_is_named_by_its_descriptor_and_each_new_one_on_it_apart() {
        let mut feed = PageFeed::default();
        feed.feed(&WatchEvent {
            what: What::Exec {
                program: "python3 server.py".into(),
            },
            ..syscall(7, "socket", None, Phase::Enter)
        });
        let enter = with(syscall(7, "socket", None, Phase::Enter), |args, _, _| {
            args.push("family", Arg::Name("AF_INET".into()));
            args.push("type", Arg::Name("SOCK_STREAM|SOCK_CLOEXEC".into()));
        });
        assert!(
            feed.feed(&enter).is_empty(),
            "the enter waits for its descriptor"
        );
        let returned = with(syscall(7, "socket", None, Phase::Return), |_, _, result| {
            *result = Some(3);
        });
        let made = events(feed.feed(&returned));
        assert_eq!(made.len(), 2);
        assert_eq!(made[0].endpoint, "server.py[7].fd3");
        assert_eq!(made[0].phase, Phase::Enter);
        assert_eq!(
            made[1].call,
            Call::Socket {
                family: Family::Inet,
                sock_type: SockType::Stream
            }
        );
        assert_eq!(made[1].result.as_ref().unwrap().value, ReturnValue::Socket);
        feed.feed(&syscall(7, "close", Some(3), Phase::Enter));
        feed.feed(&with(
            syscall(7, "close", Some(3), Phase::Return),
            |_, _, r| *r = Some(0),
        ));
        feed.feed(&enter);
        let again = events(feed.feed(&returned));
        assert_eq!(again[1].endpoint, "server.py[7].fd3#2");
    }

    #[test]
    fn sends_and_receives_carry_their_bytes_and_the_socket_its_addresses_once() {
        let mut feed = PageFeed::default();
        let send = with(syscall(5, "sendto", Some(4), Phase::Enter), |args, _, _| {
            args.push("data", Arg::Data(Bytes(b"hi".to_vec())));
        });
        let sent = events(feed.feed(&send));
        assert_eq!(
            sent[0].call,
            Call::Send {
                data: Bytes(b"hi".to_vec())
            }
        );
        let mut returned = with(syscall(5, "sendto", Some(4), Phase::Return), |_, _, r| {
            *r = Some(2);
        });
        if let What::Syscall { local, peer, .. } = &mut returned.what {
            *local = Some(addr(40000));
            *peer = Some(addr(9000));
        }
        let back = events(feed.feed(&returned));
        let result = back[0].result.as_ref().unwrap();
        assert_eq!(result.value, ReturnValue::Sent { count: 2 });
        assert_eq!(result.local, Some(addr(40000)));
        assert_eq!(result.peer, Some(addr(9000)));
        // The next call on it says nothing of its addresses: the page has them.
        feed.feed(&syscall(5, "recvfrom", Some(4), Phase::Enter));
        let received = with(
            syscall(5, "recvfrom", Some(4), Phase::Return),
            |_, out, r| {
                *r = Some(3);
                out.push("data", Arg::Data(Bytes(b"abc".to_vec())));
            },
        );
        let got = events(feed.feed(&received));
        let result = got[0].result.as_ref().unwrap();
        assert_eq!(result.local, None);
        assert!(matches!(&result.value, ReturnValue::Received { data, .. } if data.0 == b"abc"));
        assert_eq!(got[0].watched.as_ref().unwrap().syscall, "recvfrom");
    }

    #[test]
    fn a_python_call_names_its_line_and_its_file_is_sent_once() {
        // Writes and reads a file: the lab's property test counts its own descriptors alone.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let dir = std::env::temp_dir().join(format!("socket-lab-feed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("server.py");
        std::fs::write(&file, "import socket\ns = socket.socket()\n").unwrap();
        let mut feed = PageFeed::default();
        let mut enter = syscall(9, "listen", Some(3), Phase::Enter);
        if let What::Syscall { python, args, .. } = &mut enter.what {
            args.push("backlog", Arg::Int(5));
            *python = Some(PythonCall {
                file: file.to_string_lossy().into_owned(),
                line: 2,
                call: "listen".into(),
            });
        }
        let items = feed.feed(&enter);
        assert!(
            matches!(&items[0], Item::Program(program) if program.code.starts_with("import socket"))
        );
        let Item::Event(event) = &items[1] else {
            panic!("the call follows its program");
        };
        assert_eq!(event.line, Some(2));
        assert_eq!(event.call, Call::Listen { backlog: 5 });
        let watched = event.watched.as_ref().unwrap();
        assert_eq!(watched.python.as_deref(), Some("listen"));
        assert_eq!(feed.feed(&enter).len(), 1, "the program was sent already");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_forked_child_names_its_inherited_sockets_with_their_addresses() {
        let mut feed = PageFeed::default();
        feed.feed(&syscall(1, "accept4", Some(3), Phase::Enter));
        let mut accepted = with(
            syscall(1, "accept4", Some(3), Phase::Return),
            |_, out, r| {
                *r = Some(4);
                out.push("address", Arg::Address(addr(40000)));
            },
        );
        if let What::Syscall { local, .. } = &mut accepted.what {
            *local = Some(addr(9000));
        }
        let back = events(feed.feed(&accepted));
        assert!(matches!(
            &back[0].result.as_ref().unwrap().value,
            ReturnValue::Accepted { endpoint, fd: 4, .. } if endpoint == "process[1].fd4"
        ));
        feed.feed(&WatchEvent {
            what: What::Spawned {
                child: 2,
                thread: false,
            },
            ..syscall(1, "fork", None, Phase::Enter)
        });
        feed.feed(&syscall(2, "recvfrom", Some(4), Phase::Enter));
        let got = events(feed.feed(&with(
            syscall(2, "recvfrom", Some(4), Phase::Return),
            |_, _, r| *r = Some(0),
        )));
        assert_eq!(got[0].endpoint, "process[2].fd4");
        let result = got[0].result.as_ref().unwrap();
        assert_eq!(result.local, Some(addr(9000)));
        assert_eq!(result.peer, Some(addr(40000)));
    }

    #[test]
    fn a_process_that_made_socket_calls_ends_with_an_event_that_closes_them() {
        let mut feed = PageFeed::default();
        let ended = |pid| WatchEvent {
            what: What::Killed {
                signal: "SIGSEGV".into(),
                core_dumped: true,
            },
            ..syscall(pid, "kill", None, Phase::Enter)
        };
        // A process with no socket call (a shell shim's helper) ends unseen.
        assert!(feed.feed(&ended(3)).is_empty());
        feed.feed(&syscall(4, "close", Some(5), Phase::Enter));
        let items = events(feed.feed(&ended(4)));
        assert_eq!(items.len(), 1);
        let end = &items[0];
        assert_eq!(
            end.endpoint, end.role,
            "the process, not one of its sockets"
        );
        assert_eq!(
            end.call,
            Call::Other {
                text: "was killed by SIGSEGV (core dumped)".into()
            }
        );
        assert!(end.watched.as_ref().unwrap().process_ended);
        assert_eq!(
            shared::describe::kernel_call_text(end),
            "+++ was killed by SIGSEGV (core dumped) +++"
        );
        // The first process seen is the run's root: its end is this watch's last word.
        assert_eq!(
            feed.ending(),
            Some((
                "process[3] was killed by SIGSEGV (core dumped)".into(),
                false
            ))
        );
    }

    #[test]
    fn system_calls_the_tutorial_has_no_call_for_are_other_with_their_words() {
        let poll = with(syscall(1, "poll", None, Phase::Enter), |args, _, _| {
            args.push("fds", Arg::Fds(vec![3]));
        });
        assert_eq!(
            enter_call(
                "poll",
                match &poll.what {
                    What::Syscall { args, .. } => args,
                    _ => unreachable!(),
                }
            ),
            Call::Other {
                text: "fds=[3]".into()
            }
        );
        let mut args = Args::default();
        args.push("command", Arg::Name("F_SETFL".into()));
        args.push("flags", Arg::Name("O_RDWR|O_NONBLOCK".into()));
        assert_eq!(
            enter_call("fcntl", &args),
            Call::Setblocking { flag: false }
        );
        let mut args = Args::default();
        args.push("option", Arg::Name("SO_REUSEADDR".into()));
        args.push("value", Arg::Int(1));
        assert_eq!(
            enter_call("setsockopt", &args),
            Call::Setsockopt {
                option: SockOption::ReuseAddr(true)
            }
        );
    }
}
