//! The broker process's side: a loop that makes network namespaces and sockets in them.

//!
//! It runs in a child forked from the (threaded) backend, so until it exits it may use only
//! what is safe after such a fork: raw system calls on stack buffers, no allocation, no
//! locks, no Rust standard library I/O. Every function here keeps to that.

use std::os::fd::RawFd;

use super::wire::{MAX_BATCH, Reply, Request, op};

/// The descriptor the channel to the backend has in the broker.
pub(super) const CHANNEL: RawFd = 3;

/// The broker's life: enters a user namespace of its own (where it may make network
/// namespaces), says whether that worked, then answers requests until the backend closes
/// the channel. Never returns.
///
/// # Safety
/// Call only in a child just forked, with `channel` one end of a `SOCK_SEQPACKET` pair.
pub(super) unsafe fn serve(channel: RawFd) -> ! {
    unsafe {
        // Keep the channel alone: a descriptor of the backend's held here would keep its
        // socket open after the backend closes it (a lab's close would send no FIN).
        if channel != CHANNEL {
            libc::dup2(channel, CHANNEL);
        }
        libc::syscall(libc::SYS_close_range, CHANNEL + 1, u32::MAX, 0);
        // Ctrl-C in a terminal reaches the whole process group: the backend shuts down on it
        // and closes the channel, and the broker then ends; it must not end first.
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);

        let status = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
            Reply::ok()
        } else {
            Reply::failed(errno(), op::HELLO)
        };
        send(&status, &[]);
        if status.errno != 0 {
            libc::_exit(1);
        }
        loop {
            let mut request = Request::default();
            let mut received: RawFd = -1;
            let length = receive(&mut request, &mut received);
            if length <= 0 {
                // The backend closed its end (or is gone): nothing more will be asked.
                libc::_exit(0);
            }
            match request.op {
                op::NEW_NETWORK => new_network(),
                op::SOCKET => socket_in(received, &request),
                _ => send(&Reply::failed(libc::EINVAL, request.op), &[]),
            }
            if received >= 0 {
                libc::close(received);
            }
        }
    }
}

/// Makes a network namespace with its loopback up, and sends back a descriptor of it and a
/// packet socket opened in it.
unsafe fn new_network() {
    unsafe {
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            return send(&Reply::failed(errno(), op::NEW_NETWORK), &[]);
        }
        let namespace = libc::open(
            c"/proc/self/ns/net".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if namespace < 0 {
            return send(&Reply::failed(errno(), op::NEW_NETWORK), &[]);
        }
        if let Err(error) = loopback_up() {
            libc::close(namespace);
            return send(&Reply::failed(error, op::NEW_NETWORK), &[]);
        }
        let capture = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from((libc::ETH_P_ALL as u16).to_be()),
        );
        if capture < 0 {
            // A network without capture still serves: the backend says packets are off.
            send(&Reply::failed_capture(errno()), &[namespace]);
        } else {
            send(&Reply::ok(), &[namespace, capture]);
            libc::close(capture);
        }
        libc::close(namespace);
    }
}

/// Brings `lo` up in the current network namespace (a new one starts with it down).
pub(super) unsafe fn loopback_up() -> Result<(), i32> {
    unsafe {
        let control = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if control < 0 {
            return Err(errno());
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        request.ifr_name[0] = b'l' as libc::c_char;
        request.ifr_name[1] = b'o' as libc::c_char;
        let mut result = libc::ioctl(control, libc::SIOCGIFFLAGS, &mut request);
        if result == 0 {
            request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            result = libc::ioctl(control, libc::SIOCSIFFLAGS, &request);
        }
        let error = errno();
        libc::close(control);
        if result == 0 { Ok(()) } else { Err(error) }
    }
}

/// Opens `request.count` sockets (at least one, at most [`MAX_BATCH`]) in the network
/// namespace `namespace` and sends them back in one reply; an error if not even one opens.
unsafe fn socket_in(namespace: RawFd, request: &Request) {
    unsafe {
        if namespace < 0 {
            return send(&Reply::failed(libc::EBADF, op::SOCKET), &[]);
        }
        if libc::setns(namespace, libc::CLONE_NEWNET) != 0 {
            return send(&Reply::failed(errno(), op::SOCKET), &[]);
        }
        let mut sockets = [-1; MAX_BATCH as usize];
        let wanted = request.count.clamp(1, MAX_BATCH) as usize;
        let mut opened = 0;
        while opened < wanted {
            let socket = libc::socket(
                request.domain,
                request.kind | libc::SOCK_CLOEXEC,
                request.protocol,
            );
            if socket < 0 {
                break;
            }
            sockets[opened] = socket;
            opened += 1;
        }
        if opened == 0 {
            return send(&Reply::failed(errno(), op::SOCKET), &[]);
        }
        send(&Reply::ok(), &sockets[..opened]);
        for &socket in &sockets[..opened] {
            libc::close(socket);
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A buffer for control messages, aligned as `cmsghdr` needs.
#[repr(C, align(8))]
struct ControlBuffer([u8; 128]);

/// Sends `reply` with up to two descriptors.
unsafe fn send(reply: &Reply, fds: &[RawFd]) {
    unsafe {
        let mut iov = libc::iovec {
            iov_base: std::ptr::from_ref(reply).cast_mut().cast(),
            iov_len: size_of::<Reply>(),
        };
        let mut control = ControlBuffer([0; 128]);
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        if !fds.is_empty() {
            let fd_bytes = std::mem::size_of_val(fds) as u32;
            message.msg_control = control.0.as_mut_ptr().cast();
            message.msg_controllen = libc::CMSG_SPACE(fd_bytes) as usize;
            let header = libc::CMSG_FIRSTHDR(&message);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(fd_bytes) as usize;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(header),
                fd_bytes as usize,
            );
        }
        libc::sendmsg(CHANNEL, &message, libc::MSG_NOSIGNAL);
    }
}

/// Receives a request and the descriptor that may come with it; returns the length read.
unsafe fn receive(request: &mut Request, received: &mut RawFd) -> isize {
    unsafe {
        let mut iov = libc::iovec {
            iov_base: std::ptr::from_mut(request).cast(),
            iov_len: size_of::<Request>(),
        };
        let mut control = ControlBuffer([0; 128]);
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.0.as_mut_ptr().cast();
        message.msg_controllen = control.0.len();
        let length = loop {
            let length = libc::recvmsg(CHANNEL, &mut message, libc::MSG_CMSG_CLOEXEC);
            if length >= 0 || errno() != libc::EINTR {
                break length;
            }
        };
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*header).cmsg_len - libc::CMSG_LEN(0) as usize) / size_of::<RawFd>();
                let data = libc::CMSG_DATA(header).cast::<RawFd>();
                for index in 0..count {
                    let fd = data.add(index).read_unaligned();
                    if *received < 0 {
                        *received = fd;
                    } else {
                        libc::close(fd);
                    }
                }
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
        length
    }
}
