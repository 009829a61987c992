//! Which descriptors of each watched process are sockets.
//!
//! The seccomp filter stops `read`, `write` and `close` on every descriptor; the tracer shows
//! only those on sockets, and must decide at once, while the program waits. What a descriptor
//! is comes from the kernel (`/proc/TID/fd/N` links to `socket:[INODE]` for a socket) the
//! first time a call uses it, and is then kept until something can change it: a `close`, a
//! `dup2` onto it, `close_range`, an `exec` (which closes close-on-exec descriptors). Every
//! one of those stops the program too (see `filter.rs`), so a kept answer is never stale.
//! Threads share their process's table; a forked child starts with a copy of its parent's.

use std::collections::HashMap;

/// The tables of every watched process, by process id (the thread group's id).
#[derive(Debug, Default)]
pub(crate) struct FdTables {
    tables: HashMap<i32, HashMap<i32, bool>>,
}

impl FdTables {
    /// Whether `fd` of process `pid` is a socket, asked of the kernel through thread `tid`
    /// when the table does not know.
    pub(crate) fn is_socket(&mut self, pid: i32, tid: i32, fd: i32) -> bool {
        if fd < 0 {
            return false;
        }
        let table = self.tables.entry(pid).or_default();
        *table
            .entry(fd)
            .or_insert_with(|| kernel_says_socket(tid, fd))
    }

    /// A call returned a new socket as `fd` (`socket`, `accept`, `socketpair`).
    pub(crate) fn opened_socket(&mut self, pid: i32, fd: i32) {
        self.tables.entry(pid).or_default().insert(fd, true);
    }

    /// `fd` was closed, or replaced by another descriptor (`dup2`): ask again next time.
    pub(crate) fn forget(&mut self, pid: i32, fd: i32) {
        if let Some(table) = self.tables.get_mut(&pid) {
            table.remove(&fd);
        }
    }

    /// Descriptors `first..=last` were closed (`close_range`).
    pub(crate) fn forget_range(&mut self, pid: i32, first: u32, last: u32) {
        if let Some(table) = self.tables.get_mut(&pid) {
            table.retain(|&fd, _| !(first..=last).contains(&(fd as u32)));
        }
    }

    /// The process executed a new program, or anything may have changed: ask again for
    /// every descriptor.
    pub(crate) fn forget_all(&mut self, pid: i32) {
        self.tables.remove(&pid);
    }

    /// A forked child starts with its parent's descriptors.
    pub(crate) fn fork(&mut self, parent: i32, child: i32) {
        let copy = self.tables.get(&parent).cloned().unwrap_or_default();
        self.tables.insert(child, copy);
    }

    /// The process ended.
    pub(crate) fn remove(&mut self, pid: i32) {
        self.tables.remove(&pid);
    }

    /// The socket descriptors the table knows of process `pid`, in order.
    pub(crate) fn sockets(&self, pid: i32) -> Vec<i32> {
        let mut fds: Vec<i32> = self
            .tables
            .get(&pid)
            .map(|table| {
                table
                    .iter()
                    .filter(|(_, socket)| **socket)
                    .map(|(fd, _)| *fd)
                    .collect()
            })
            .unwrap_or_default();
        fds.sort_unstable();
        fds
    }
}

/// Asks the kernel what `fd` of thread `tid` is: a socket's link reads `socket:[INODE]`.
fn kernel_says_socket(tid: i32, fd: i32) -> bool {
    std::fs::read_link(format!("/proc/{tid}/fd/{fd}")).is_ok_and(|target| {
        target
            .as_os_str()
            .as_encoded_bytes()
            .starts_with(b"socket:")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn the_kernel_tells_a_socket_from_a_file_and_the_answer_is_kept_until_forgotten() {
        let pid = std::process::id() as i32;
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let mut tables = FdTables::default();
        assert!(tables.is_socket(pid, pid, socket.as_raw_fd()));
        assert!(!tables.is_socket(pid, pid, file.as_raw_fd()));
        assert!(!tables.is_socket(pid, pid, -1));
        assert_eq!(tables.sockets(pid), vec![socket.as_raw_fd()]);
        // The table answers from what it kept, so a descriptor reused behind its back would be
        // wrong; that is why every call that can reuse one makes it forget.
        let fd = socket.as_raw_fd();
        drop(socket);
        assert!(tables.is_socket(pid, pid, fd));
        tables.forget(pid, fd);
        assert!(!tables.is_socket(pid, pid, fd));
        tables.fork(pid, pid + 1_000_000);
        tables.opened_socket(pid, 1000);
        assert_eq!(tables.sockets(pid), vec![1000]);
        assert!(tables.sockets(pid + 1_000_000).is_empty());
        tables.forget_range(pid, 999, 1001);
        assert!(tables.sockets(pid).is_empty());
    }
}
