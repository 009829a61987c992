//! What a watched system call asked and what it got: its registers and the program's memory
//! read into named [`Args`], on entry (what goes in) and on return (what came out).

use std::io::IoSliceMut;

use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;
use shared::Bytes;

use super::args::{self, Arg, Args, MAX_DATA};

/// The most descriptors of one `poll` or `select` that an event lists.
const MAX_POLL_FDS: usize = 64;

/// A watched program's memory, read while it is stopped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory(pub(crate) Pid);

impl Memory {
    /// Up to `len` bytes at `address`; fewer where the memory ends, none for a null pointer.
    pub(crate) fn read(self, address: u64, len: usize) -> Vec<u8> {
        if address == 0 || len == 0 {
            return Vec::new();
        }
        let mut buffer = vec![0u8; len];
        let remote = [RemoteIoVec {
            base: address as usize,
            len,
        }];
        match process_vm_readv(self.0, &mut [IoSliceMut::new(&mut buffer)], &remote) {
            Ok(read) => buffer.truncate(read),
            Err(_) => buffer.clear(),
        }
        buffer
    }

    fn read_u32(self, address: u64) -> Option<u32> {
        u32_at(&self.read(address, 4), 0)
    }

    /// The fields of the `struct msghdr` at `address` that a send or a receive fills or
    /// reads: the address (`msg_name`, `msg_namelen`) and the iovecs (`msg_iov`,
    /// `msg_iovlen`), read at once; zeroes where the memory cannot be read.
    fn msghdr(self, address: u64) -> Msghdr {
        let header = self.read(address, 32);
        Msghdr {
            name: u64_at(&header, 0).unwrap_or(0),
            name_len: u32_at(&header, 8).unwrap_or(0),
            iov: u64_at(&header, 16).unwrap_or(0),
            iov_count: u64_at(&header, 24).unwrap_or(0),
        }
    }

    /// `count` records of `size` bytes each at `address` (an array of `pollfd`, `iovec`,
    /// `epoll_event`), read at once; a record the memory cuts short is left out.
    fn records(self, address: u64, count: usize, size: usize) -> Vec<Vec<u8>> {
        self.read(address, count * size)
            .chunks_exact(size)
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// The bytes of the `count` iovecs at `iov`, at most `limit` of them (`MAX_DATA`), and
    /// how many bytes the iovecs hold in all.
    fn read_iovecs(self, iov: u64, count: u64, limit: usize) -> (Vec<u8>, u64) {
        let mut data = Vec::new();
        let mut total = 0u64;
        for iovec in self.records(iov, count.min(1024) as usize, 16) {
            let (Some(base), Some(len)) = (u64_at(&iovec, 0), u64_at(&iovec, 8)) else {
                break;
            };
            total += len;
            let room = limit.saturating_sub(data.len());
            if room > 0 {
                data.extend(self.read(base, (len as usize).min(room)));
            }
        }
        (data, total)
    }

    /// A `sockaddr` at `address` of `len` bytes.
    fn sockaddr(self, address: u64, len: u64) -> Option<Arg> {
        if address == 0 {
            return None;
        }
        args::sockaddr(&self.read(address, (len as usize).min(128)))
    }

    /// A `sockaddr` a call wrote at `address`, its length at `len_address`.
    fn written_sockaddr(self, address: u64, len_address: u64) -> Option<Arg> {
        let len = self.read_u32(len_address)?;
        self.sockaddr(address, len.into())
    }
}

/// The parts of a `struct msghdr` that are read (see [`Memory::msghdr`]).
struct Msghdr {
    name: u64,
    name_len: u32,
    iov: u64,
    iov_count: u64,
}

/// The native-endian integers of a record, by their offset in it.
fn i16_at(bytes: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// A watched call as it entered.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The system call's number.
    pub(crate) number: i64,
    /// Its name, as strace writes it.
    pub(crate) name: &'static str,
    /// The socket it was made on, for the calls that take one.
    pub(crate) fd: Option<i32>,
    /// The arguments it was given.
    pub(crate) args: Args,
    /// The raw argument registers, for reading what the call wrote on return.
    pub(crate) raw: [u64; 6],
    /// Whether the call is shown (as an enter event, and so as a return event).
    pub(crate) shown: bool,
    /// The Python call that made it, read at entry: the same one is running at its return.
    pub(crate) python: Option<super::python::PythonCall>,
}

/// The name of a watched system call, as strace writes it.
pub(crate) fn name(number: i64) -> &'static str {
    match number {
        libc::SYS_socket => "socket",
        libc::SYS_socketpair => "socketpair",
        libc::SYS_bind => "bind",
        libc::SYS_listen => "listen",
        libc::SYS_accept => "accept",
        libc::SYS_accept4 => "accept4",
        libc::SYS_connect => "connect",
        libc::SYS_sendto => "sendto",
        libc::SYS_recvfrom => "recvfrom",
        libc::SYS_sendmsg => "sendmsg",
        libc::SYS_recvmsg => "recvmsg",
        libc::SYS_sendmmsg => "sendmmsg",
        libc::SYS_recvmmsg => "recvmmsg",
        libc::SYS_shutdown => "shutdown",
        libc::SYS_getsockname => "getsockname",
        libc::SYS_getpeername => "getpeername",
        libc::SYS_setsockopt => "setsockopt",
        libc::SYS_getsockopt => "getsockopt",
        libc::SYS_read => "read",
        libc::SYS_write => "write",
        libc::SYS_close => "close",
        libc::SYS_fcntl => "fcntl",
        libc::SYS_poll => "poll",
        libc::SYS_ppoll => "ppoll",
        libc::SYS_select => "select",
        libc::SYS_pselect6 => "pselect6",
        libc::SYS_epoll_wait => "epoll_wait",
        libc::SYS_epoll_pwait => "epoll_pwait",
        libc::SYS_epoll_pwait2 => "epoll_pwait2",
        libc::SYS_epoll_ctl => "epoll_ctl",
        libc::SYS_dup => "dup",
        libc::SYS_dup2 => "dup2",
        libc::SYS_dup3 => "dup3",
        libc::SYS_close_range => "close_range",
        _ => "unknown",
    }
}

/// Whether the call's first argument is the socket it acts on.
pub(crate) fn takes_fd(number: i64) -> bool {
    !matches!(
        number,
        libc::SYS_socket
            | libc::SYS_socketpair
            | libc::SYS_poll
            | libc::SYS_ppoll
            | libc::SYS_select
            | libc::SYS_pselect6
            | libc::SYS_close_range
            | libc::SYS_epoll_ctl
            | libc::SYS_epoll_wait
            | libc::SYS_epoll_pwait
            | libc::SYS_epoll_pwait2
    )
}

/// Decodes a call's arguments as it enters. `is_socket` answers for the descriptors a
/// `poll` or `select` waits on, which are shown only when they are sockets.
pub(crate) fn entry(
    number: i64,
    raw: [u64; 6],
    memory: Memory,
    mut is_socket: impl FnMut(i32) -> bool,
    epoll_sockets: impl FnOnce(i32) -> Vec<i32>,
) -> Entry {
    let [a0, a1, a2, a3, a4, a5] = raw;
    let fd = takes_fd(number).then_some(a0 as i32);
    let mut args = Args::default();
    let data = |args: &mut Args, address: u64, len: u64| {
        let bytes = memory.read(address, (len as usize).min(MAX_DATA));
        args.push("data", Arg::Data(Bytes(bytes)));
        args.push("size", Arg::Int(len as i64));
    };
    match number {
        libc::SYS_socket | libc::SYS_socketpair => {
            args.push("family", args::family(a0));
            args.push("type", args::sock_type(a1));
            args.push("protocol", Arg::Int(a2 as i64));
        }
        libc::SYS_bind | libc::SYS_connect => {
            if let Some(address) = memory.sockaddr(a1, a2) {
                args.push("address", address);
            }
        }
        libc::SYS_listen => args.push("backlog", Arg::Int(a1 as i32 as i64)),
        libc::SYS_accept4 => args.push("flags", args::accept_flags(a3)),
        libc::SYS_sendto => {
            data(&mut args, a1, a2);
            args.push("flags", args::msg_flags(a3));
            if let Some(address) = memory.sockaddr(a4, a5) {
                args.push("address", address);
            }
        }
        libc::SYS_write => data(&mut args, a1, a2),
        libc::SYS_recvfrom => {
            args.push("bufsize", Arg::Int(a2 as i64));
            args.push("flags", args::msg_flags(a3));
        }
        libc::SYS_read => args.push("bufsize", Arg::Int(a2 as i64)),
        libc::SYS_sendmsg => {
            let Msghdr {
                name,
                name_len,
                iov,
                iov_count,
            } = memory.msghdr(a1);
            let (bytes, total) = memory.read_iovecs(iov, iov_count, MAX_DATA);
            args.push("data", Arg::Data(Bytes(bytes)));
            args.push("size", Arg::Int(total as i64));
            args.push("flags", args::msg_flags(a2));
            if let Some(address) = memory.sockaddr(name, name_len.into()) {
                args.push("address", address);
            }
        }
        libc::SYS_recvmsg => args.push("flags", args::msg_flags(a2)),
        libc::SYS_sendmmsg | libc::SYS_recvmmsg => {
            args.push("vlen", Arg::Int(a2 as i64));
            args.push("flags", args::msg_flags(a3));
        }
        libc::SYS_shutdown => args.push("how", args::shutdown_how(a1)),
        libc::SYS_setsockopt | libc::SYS_getsockopt => {
            let (level, option) = args::sockopt(a1, a2);
            args.push("level", level);
            args.push("option", option);
            if number == libc::SYS_setsockopt {
                args.push(
                    "value",
                    args::sockopt_value(&memory.read(a3, (a4 as usize).min(64))),
                );
            }
        }
        libc::SYS_fcntl => {
            let command = match a1 as i32 {
                libc::F_SETFL => "F_SETFL",
                libc::F_DUPFD => "F_DUPFD",
                _ => "F_DUPFD_CLOEXEC",
            };
            args.push("command", Arg::Name(command.to_owned()));
            if a1 as i32 == libc::F_SETFL {
                args.push("flags", args::file_flags(a2));
            } else {
                args.push("lowest", Arg::Int(a2 as i64));
            }
        }
        libc::SYS_poll | libc::SYS_ppoll => {
            let mut sockets = Vec::new();
            let mut events = Vec::new();
            for pollfd in memory.records(a0, (a1 as usize).min(MAX_POLL_FDS), 8) {
                let Some(fd) = i32_at(&pollfd, 0) else {
                    break;
                };
                let asked = i16_at(&pollfd, 4).unwrap_or(0);
                if is_socket(fd) {
                    sockets.push(fd);
                    events.push(format!("{fd}:{}", args::poll_events(asked)));
                }
            }
            args.push("fds", Arg::Fds(sockets));
            args.push("events", Arg::Name(events.join(" ")));
            if number == libc::SYS_poll {
                args.push("timeout_ms", Arg::Int(a2 as i32 as i64));
            }
        }
        libc::SYS_select | libc::SYS_pselect6 => {
            let nfds = (a0 as usize).min(1024);
            let read = memory.read(a1, nfds.div_ceil(8));
            let write = memory.read(a2, nfds.div_ceil(8));
            let set = |bits: &[u8], fd: usize| {
                bits.get(fd / 8)
                    .is_some_and(|byte| byte & (1 << (fd % 8)) != 0)
            };
            let (mut readable, mut writable) = (Vec::new(), Vec::new());
            for fd in 0..nfds {
                let (in_read, in_write) = (set(&read, fd), set(&write, fd));
                if (in_read || in_write)
                    && is_socket(fd as i32)
                    && readable.len() + writable.len() < MAX_POLL_FDS
                {
                    if in_read {
                        readable.push(fd as i32);
                    }
                    if in_write {
                        writable.push(fd as i32);
                    }
                }
            }
            args.push("readable", Arg::Fds(readable));
            args.push("writable", Arg::Fds(writable));
        }
        libc::SYS_epoll_wait | libc::SYS_epoll_pwait | libc::SYS_epoll_pwait2 => {
            args.push("epfd", Arg::Int(a0 as i32 as i64));
            args.push("fds", Arg::Fds(epoll_sockets(a0 as i32)));
            args.push("maxevents", Arg::Int(a2 as i32 as i64));
            if number != libc::SYS_epoll_pwait2 {
                args.push("timeout_ms", Arg::Int(a3 as i32 as i64));
            }
        }
        _ => {}
    }
    Entry {
        number,
        name: name(number),
        fd,
        args,
        raw,
        shown: false,
        python: None,
    }
}

/// Decodes what a call that returned `value` (not an error) wrote back.
pub(crate) fn exit(entry: &Entry, value: i64, memory: Memory) -> Args {
    let [_, a1, a2, _, a4, a5] = entry.raw;
    let mut out = Args::default();
    let received = |out: &mut Args, address: u64| {
        let bytes = memory.read(address, (value as usize).min(MAX_DATA));
        out.push("data", Arg::Data(Bytes(bytes)));
        out.push("size", Arg::Int(value));
    };
    match entry.number {
        libc::SYS_socketpair => {
            let fds = memory.read(entry.raw[3], 8);
            let fds: Vec<i32> = fds
                .chunks_exact(4)
                .map(|b| i32::from_ne_bytes(b.try_into().unwrap_or_default()))
                .collect();
            out.push("fds", Arg::Fds(fds));
        }
        libc::SYS_accept | libc::SYS_accept4 | libc::SYS_getsockname | libc::SYS_getpeername => {
            if let Some(address) = memory.written_sockaddr(a1, a2) {
                out.push("address", address);
            }
        }
        libc::SYS_recvfrom => {
            received(&mut out, a1);
            if let Some(address) = memory.written_sockaddr(a4, a5) {
                out.push("from", address);
            }
        }
        libc::SYS_read => received(&mut out, a1),
        libc::SYS_recvmsg => {
            let Msghdr {
                name,
                name_len,
                iov,
                iov_count,
            } = memory.msghdr(entry.raw[1]);
            let limit = (value as usize).min(MAX_DATA);
            let (bytes, _) = memory.read_iovecs(iov, iov_count, limit);
            out.push("data", Arg::Data(Bytes(bytes)));
            out.push("size", Arg::Int(value));
            if let Some(address) = memory.sockaddr(name, name_len.into()) {
                out.push("from", address);
            }
        }
        libc::SYS_getsockopt => {
            let len = memory.read_u32(entry.raw[4]).unwrap_or(0);
            out.push(
                "value",
                args::sockopt_value(&memory.read(entry.raw[3], (len as usize).min(64))),
            );
        }
        libc::SYS_epoll_wait | libc::SYS_epoll_pwait | libc::SYS_epoll_pwait2 => {
            // struct epoll_event is packed on x86_64: u32 events, then u64 data, which
            // Python's selectors (and most programs) set to the descriptor.
            let mut ready = Vec::new();
            let count = (value.max(0) as usize).min(MAX_POLL_FDS);
            for event in memory.records(a1, count, 12) {
                let (Some(events), Some(data)) = (u32_at(&event, 0), i32_at(&event, 4)) else {
                    break;
                };
                ready.push(format!("{data}:{}", args::poll_events(events as i16)));
            }
            if !ready.is_empty() {
                out.push("ready", Arg::Name(ready.join(" ")));
            }
        }
        libc::SYS_poll | libc::SYS_ppoll => {
            let mut ready = Vec::new();
            for pollfd in memory.records(entry.raw[0], (a1 as usize).min(MAX_POLL_FDS), 8) {
                let (Some(fd), Some(revents)) = (i32_at(&pollfd, 0), i16_at(&pollfd, 6)) else {
                    break;
                };
                if revents != 0
                    && entry.args.0.iter().any(|(name, arg)| {
                        *name == "fds" && matches!(arg, Arg::Fds(fds) if fds.contains(&fd))
                    })
                {
                    ready.push(format!("{fd}:{}", args::poll_events(revents)));
                }
            }
            if !ready.is_empty() {
                out.push("ready", Arg::Name(ready.join(" ")));
            }
        }
        _ => {}
    }
    out
}
