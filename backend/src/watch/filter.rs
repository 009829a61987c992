//! The seccomp filter a watched program runs under: it stops the program at the system calls
//! Socket Lab shows, and lets every other call run at full speed, without waking the tracer.
//!
//! A filter sees only a call's number and its arguments' values, not what a descriptor is, so
//! `read`, `write` and `close` stop the program on every descriptor; the tracer then lets
//! those on files and pipes go at once, without an event (see `fds.rs`). The calls that make or
//! move descriptors (`dup2`, `close_range`, ...) stop it too, so that the tracer's table of
//! which descriptors are sockets stays true.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The calls that always stop the program: the socket calls themselves, and those on
/// descriptors that may be sockets.
pub(crate) const WATCHED: &[i64] = &[
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

/// The arch this filter is compiled for; the filter itself kills nothing on another arch, it
/// refuses to be built (seccompiler checks the audit arch of every call).
#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

/// The filter as a BPF program, ready to load in the program's process before it executes.
pub(crate) fn program() -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        WATCHED.iter().map(|&call| (call, Vec::new())).collect();
    // fcntl stops the program only to set flags (O_NONBLOCK) or to duplicate a descriptor;
    // F_GETFL, F_SETFD and the rest, which Python calls often, run on.
    let command_is = |command: i32| -> Result<SeccompRule, String> {
        let condition =
            SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, command as u64)
                .map_err(|error| error.to_string())?;
        SeccompRule::new(vec![condition]).map_err(|error| error.to_string())
    };
    rules.insert(
        libc::SYS_fcntl,
        vec![
            command_is(libc::F_SETFL)?,
            command_is(libc::F_DUPFD)?,
            command_is(libc::F_DUPFD_CLOEXEC)?,
        ],
    );
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Trace(0), ARCH)
        .map_err(|error| format!("the seccomp filter could not be built: {error}"))?;
    BpfProgram::try_from(filter)
        .map_err(|error| format!("the seccomp filter could not be compiled: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_for_this_machine() {
        let program = program().unwrap();
        // One check of the arch, one jump per call at least: a filter that forgot its calls
        // would be a handful of instructions.
        assert!(
            program.len() > WATCHED.len(),
            "{} instructions",
            program.len()
        );
    }
}
