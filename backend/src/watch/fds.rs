//! Which descriptors of each watched process are sockets.
//!
//! The seccomp filter stops `read`, `write` and `close` on every descriptor; the tracer shows
//! only those on sockets, and must decide at once, while the program waits. What a descriptor
//! is comes from the kernel (`/proc/TID/fd/N` links to `socket:[INODE]` for a socket) the
//! first time a call uses it, and is then kept until something can change it: a `close`, a
//! `dup2` onto it, `close_range`, an `exec` (which closes close-on-exec descriptors). Every
//! one of those stops the program too (see `filter.rs`), so a kept answer is never stale.
//! Threads share their process's table; a forked child starts with a copy of its parent's.

use std::collections::{BTreeSet, HashMap};

/// The tables of every watched process, by process id (the thread group's id).
#[derive(Debug, Default)]
pub(crate) struct FdTables {
    tables: HashMap<i32, HashMap<i32, bool>>,
    /// The descriptors each epoll instance waits on, by process and the instance's
    /// descriptor, from the program's `epoll_ctl` calls.
    epolls: HashMap<(i32, i32), BTreeSet<i32>>,
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
        // A closed descriptor leaves every epoll set, and a closed epoll instance is gone.
        self.epolls.remove(&(pid, fd));
        for ((owner, _), fds) in &mut self.epolls {
            if *owner == pid {
                fds.remove(&fd);
            }
        }
    }

    /// `epoll_ctl(epfd, op, fd)` succeeded.
    pub(crate) fn epoll_ctl(&mut self, pid: i32, epfd: i32, op: i32, fd: i32) {
        let set = self.epolls.entry((pid, epfd)).or_default();
        match op {
            libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD => {
                set.insert(fd);
            }
            libc::EPOLL_CTL_DEL => {
                set.remove(&fd);
            }
            _ => {}
        }
    }

    /// The sockets epoll instance `epfd` of process `pid` waits on.
    pub(crate) fn epoll_sockets(&mut self, pid: i32, tid: i32, epfd: i32) -> Vec<i32> {
        let fds: Vec<i32> = self
            .epolls
            .get(&(pid, epfd))
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        fds.into_iter()
            .filter(|&fd| self.is_socket(pid, tid, fd))
            .collect()
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
        self.epolls.retain(|(owner, _), _| *owner != pid);
    }

    /// A forked child starts with its parent's descriptors.
    pub(crate) fn fork(&mut self, parent: i32, child: i32) {
        let copy = self.tables.get(&parent).cloned().unwrap_or_default();
        self.tables.insert(child, copy);
        // The child shares its parent's epoll instances, with what they wait on.
        let epolls: Vec<_> = self
            .epolls
            .iter()
            .filter(|((owner, _), _)| *owner == parent)
            .map(|((_, epfd), fds)| ((child, *epfd), fds.clone()))
            .collect();
        self.epolls.extend(epolls);
    }

    /// The process ended.
    pub(crate) fn remove(&mut self, pid: i32) {
        self.tables.remove(&pid);
        self.epolls.retain(|(owner, _), _| *owner != pid);
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
        // The lab's property test counts this process's descriptors.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
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
        // An epoll instance waits on what epoll_ctl gave it, of which only sockets are shown.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = socket.as_raw_fd();
        // Its number may be one the table was told is closed: the tracer learns of a new
        // socket from the call that made it.
        tables.opened_socket(pid, fd);
        tables.epoll_ctl(pid, 900, libc::EPOLL_CTL_ADD, fd);
        tables.epoll_ctl(pid, 900, libc::EPOLL_CTL_ADD, file.as_raw_fd());
        assert_eq!(tables.epoll_sockets(pid, pid, 900), vec![fd]);
        tables.epoll_ctl(pid, 900, libc::EPOLL_CTL_DEL, fd);
        assert!(tables.epoll_sockets(pid, pid, 900).is_empty());
        tables.epoll_ctl(pid, 900, libc::EPOLL_CTL_ADD, fd);
        tables.forget(pid, fd);
        assert!(tables.epoll_sockets(pid, pid, 900).is_empty());
    }
}
