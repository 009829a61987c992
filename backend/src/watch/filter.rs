//! The seccomp filters a watched program runs under: they stop the program at the system
//! calls Socket Lab shows, and let every other call run at full speed, without waking the
//! tracer.
//!
//! A filter sees only a call's number and its arguments' values, not what a descriptor is, so
//! `read`, `write` and `close` would stop the program on every descriptor, files and pipes
//! included: Python's start-up alone makes over two hundred of them. They cannot be on a
//! socket before the process has one, though, so there are two stages:
//! - [`first_stage`], which the launcher loads before it executes the program, stops only the
//!   calls that work on sockets alone (`socket`, `bind`, `sendto`, ...) and the Python
//!   announcer's `write` to descriptor -4242 (see `python.rs`);
//! - [`second_stage`] adds `read`, `write`, `close`, `poll`, `select`, `epoll_wait` and the
//!   calls that change which numbers are sockets (`dup2`, `close_range`, `epoll_ctl`, `fcntl`
//!   duplicating or setting flags). The tracer makes the process load it (`inject.rs`) at its
//!   first stop of the first stage, before the call that stopped it goes on, so from the
//!   process's first socket on, every call on it is seen. The tracer then asks the kernel
//!   what each descriptor is, and lets those on files and pipes go at once (see `fds.rs`).
//!
//! A socket the program inherits (its standard input, from inetd or systemd) is shown only
//! once the program has made a socket call of its own.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::python::ANNOUNCE_FD;

/// The calls that only sockets take, which stop the program from its start.
pub(crate) const SOCKET_CALLS: &[i64] = &[
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_connect,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
    libc::SYS_shutdown,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_setsockopt,
    libc::SYS_getsockopt,
];

/// The calls that also stop the program once it has a socket: they take any descriptor.
pub(crate) const DESCRIPTOR_CALLS: &[i64] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_close,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_select,
    libc::SYS_pselect6,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    // Not shown, but they change which descriptor numbers are sockets, or which sockets an
    // epoll instance waits on.
    libc::SYS_epoll_ctl,
    libc::SYS_dup,
    libc::SYS_dup2,
    libc::SYS_dup3,
    libc::SYS_close_range,
];

/// The arch the filters are compiled for (seccompiler checks the audit arch of every call).
#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

/// A rule that matches when argument `index` (as a 32-bit value) is `value`.
fn argument_is(index: u8, value: i32) -> Result<SeccompRule, String> {
    let condition = SeccompCondition::new(
        index,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        u64::from(value as u32),
    )
    .map_err(|error| error.to_string())?;
    SeccompRule::new(vec![condition]).map_err(|error| error.to_string())
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>) -> Result<BpfProgram, String> {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Trace(0), ARCH)
        .map_err(|error| format!("the seccomp filter could not be built: {error}"))?;
    BpfProgram::try_from(filter)
        .map_err(|error| format!("the seccomp filter could not be compiled: {error}"))
}

/// The filter the launcher loads: the socket calls, and the announcer's `write`.
pub(crate) fn first_stage() -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = SOCKET_CALLS
        .iter()
        .map(|&call| (call, Vec::new()))
        .collect();
    rules.insert(libc::SYS_write, vec![argument_is(0, ANNOUNCE_FD)?]);
    compile(rules)
}

/// The filter a process loads at its first socket call: the calls on any descriptor.
pub(crate) fn second_stage() -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DESCRIPTOR_CALLS
        .iter()
        .map(|&call| (call, Vec::new()))
        .collect();
    // fcntl stops the program only to set flags (O_NONBLOCK) or to duplicate a descriptor;
    // F_GETFL, F_SETFD and the rest, which Python calls often, run on.
    rules.insert(
        libc::SYS_fcntl,
        vec![
            argument_is(1, libc::F_SETFL)?,
            argument_is(1, libc::F_DUPFD)?,
            argument_is(1, libc::F_DUPFD_CLOEXEC)?,
        ],
    );
    compile(rules)
}

/// A program's instructions as the kernel reads them (`struct sock_filter`, 8 bytes each),
/// to be written into the watched process.
pub(crate) fn instructions(program: &BpfProgram) -> Vec<u8> {
    program
        .iter()
        .flat_map(|instruction| {
            let mut bytes = [0u8; 8];
            bytes[0..2].copy_from_slice(&instruction.code.to_ne_bytes());
            bytes[2] = instruction.jt;
            bytes[3] = instruction.jf;
            bytes[4..8].copy_from_slice(&instruction.k.to_ne_bytes());
            bytes
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_stages_compile_for_this_machine() {
        let first = first_stage().unwrap();
        let second = second_stage().unwrap();
        // One check of the arch, one jump per call at least: a filter that forgot its calls
        // would be a handful of instructions.
        assert!(
            first.len() > SOCKET_CALLS.len(),
            "{} instructions",
            first.len()
        );
        assert!(
            second.len() > DESCRIPTOR_CALLS.len(),
            "{} instructions",
            second.len()
        );
        assert_eq!(instructions(&second).len(), second.len() * 8);
        // No call is in both: the second stage adds, it does not repeat.
        assert!(
            SOCKET_CALLS
                .iter()
                .all(|call| !DESCRIPTOR_CALLS.contains(call))
        );
    }
}
