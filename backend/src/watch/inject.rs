//! Makes a stopped process load the second stage of the filter (see `filter.rs`), as if it
//! had called `seccomp(2)` itself, then lets it make the call it was stopped at.
//!
//! Only the process can load a filter on itself, so the tracer borrows the call it stopped:
//! at the seccomp stop, it writes the filter below the thread's stack pointer (past the red
//! zone, where nothing of the program's lives while it is in a system call), turns the call
//! into `seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog)` (Linux runs the
//! call the tracer leaves in `orig_rax`), and at that call's return puts every register back
//! as it was with the instruction pointer on the `syscall` instruction again, so the program
//! makes its own call next, now under both filters. `TSYNC` loads it in every thread of the
//! process at once; the threads and children the process makes later inherit it.

use nix::sys::ptrace;
use nix::sys::uio::{RemoteIoVec, process_vm_writev};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The bytes below the stack pointer left alone: the System V ABI's red zone, and more.
const BELOW_STACK: u64 = 512;

/// The length of x86-64's `syscall` instruction, which the instruction pointer is moved back
/// over so that the program makes its own call again.
const SYSCALL_INSTRUCTION: u64 = 2;

/// Loads `instructions` (a compiled filter) into the process of thread `tid`, stopped at a
/// seccomp stop with `regs`. On success the thread is stopped again after the injected call,
/// its registers as they were, ready to be resumed into its own call; on failure the thread
/// is in the same state, and the error says what happened.
pub(crate) fn load_filter(
    tid: Pid,
    regs: libc::user_regs_struct,
    instructions: &[u8],
) -> Result<(), String> {
    let count = u16::try_from(instructions.len() / 8).map_err(|_| "the filter is too long")?;
    let program_at = (regs.rsp - BELOW_STACK - instructions.len() as u64 - 16) & !15;
    let fprog_at = (program_at + instructions.len() as u64 + 15) & !15;
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    let mut memory = instructions.to_vec();
    memory.resize((fprog_at - program_at) as usize, 0);
    memory.extend_from_slice(&count.to_ne_bytes());
    memory.extend_from_slice(&[0; 6]);
    memory.extend_from_slice(&program_at.to_ne_bytes());
    let remote = [RemoteIoVec {
        base: program_at as usize,
        len: memory.len(),
    }];
    let written = process_vm_writev(tid, &[std::io::IoSlice::new(&memory)], &remote)
        .map_err(|error| format!("could not write the filter into the program: {error}"))?;
    if written != memory.len() {
        return Err("could not write all of the filter into the program".to_owned());
    }
    let mut borrowed = regs;
    borrowed.orig_rax = libc::SYS_seccomp as u64;
    borrowed.rdi = u64::from(libc::SECCOMP_SET_MODE_FILTER);
    borrowed.rsi = libc::SECCOMP_FILTER_FLAG_TSYNC;
    borrowed.rdx = fprog_at;
    ptrace::setregs(tid, borrowed).map_err(|error| format!("setting registers: {error}"))?;
    let result = run_to_return(tid);
    // Whatever happened, the program's own call is made next, as it would have been.
    let mut again = regs;
    again.rip -= SYSCALL_INSTRUCTION;
    again.rax = regs.orig_rax;
    ptrace::setregs(tid, again).map_err(|error| format!("restoring registers: {error}"))?;
    match result? {
        0 => Ok(()),
        // TSYNC names the thread it could not synchronise (one under another filter).
        value if value > 0 => Err(format!("thread {value} could not take the filter")),
        value => Err(format!(
            "seccomp refused the filter: {}",
            nix::errno::Errno::from_raw(-value as i32)
        )),
    }
}

/// Lets the borrowed call run to its return stop; its return value.
fn run_to_return(tid: Pid) -> Result<i64, String> {
    ptrace::syscall(tid, None).map_err(|error| format!("resuming: {error}"))?;
    loop {
        match waitpid(tid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::PtraceSyscall(_)) => {
                let regs = ptrace::getregs(tid).map_err(|error| format!("reading: {error}"))?;
                return Ok(regs.rax as i64);
            }
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {
                return Err("the program ended while loading the filter".to_owned());
            }
            // A signal arriving now waits until the thread next runs: the kernel keeps it
            // pending while the thread is in the call.
            Ok(other) => {
                return Err(format!(
                    "an unexpected stop while loading the filter: {other:?}"
                ));
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(error) => return Err(format!("waiting: {error}")),
        }
    }
}
