//! Conversions between the protocol's [`SockAddr`] and socket2's.

use std::net::{SocketAddrV4, SocketAddrV6};
use std::os::unix::ffi::OsStrExt;

use shared::SockAddr;

/// The kernel's form of a protocol address.
pub(crate) fn to_socket2(address: &SockAddr) -> std::io::Result<socket2::SockAddr> {
    match address {
        SockAddr::Inet { host, port } => Ok(SocketAddrV4::new(*host, *port).into()),
        SockAddr::Inet6 {
            host,
            port,
            flowinfo,
            scope_id,
        } => Ok(SocketAddrV6::new(*host, *port, *flowinfo, *scope_id).into()),
        SockAddr::Unix { path, r#abstract } if *r#abstract => {
            socket2::SockAddr::unix(format!("\0{path}"))
        }
        SockAddr::Unix { path, .. } => socket2::SockAddr::unix(path),
    }
}

/// The protocol's form of an address the kernel reported; `None` for families this app does
/// not speak.
pub(crate) fn from_socket2(address: &socket2::SockAddr) -> Option<SockAddr> {
    if let Some(v4) = address.as_socket_ipv4() {
        return Some(SockAddr::Inet {
            host: *v4.ip(),
            port: v4.port(),
        });
    }
    if let Some(v6) = address.as_socket_ipv6() {
        return Some(SockAddr::Inet6 {
            host: *v6.ip(),
            port: v6.port(),
            flowinfo: v6.flowinfo(),
            scope_id: v6.scope_id(),
        });
    }
    if address.is_unix() {
        if let Some(name) = address.as_abstract_namespace() {
            return Some(SockAddr::Unix {
                path: String::from_utf8_lossy(name).into_owned(),
                r#abstract: true,
            });
        }
        let path = address
            .as_pathname()
            .map(|path| String::from_utf8_lossy(path.as_os_str().as_bytes()).into_owned())
            .unwrap_or_default();
        return Some(SockAddr::Unix {
            path,
            r#abstract: false,
        });
    }
    None
}

/// The protocol's form of an address that nix's `recvmsg` reported.
pub(crate) fn from_nix(address: &nix::sys::socket::SockaddrStorage) -> Option<SockAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SockAddr::Inet {
            host: v4.ip(),
            port: v4.port(),
        });
    }
    if let Some(v6) = address.as_sockaddr_in6() {
        return Some(SockAddr::Inet6 {
            host: v6.ip(),
            port: v6.port(),
            flowinfo: v6.flowinfo(),
            scope_id: v6.scope_id(),
        });
    }
    address.as_unix_addr().and_then(from_nix_unix)
}

/// The protocol's form of a Unix address that nix's `recvmsg` reported; `None` when the
/// kernel gave no address at all (as on a connected stream).
pub(crate) fn from_nix_unix(unix: &nix::sys::socket::UnixAddr) -> Option<SockAddr> {
    use nix::sys::socket::SockaddrLike;
    // nix asserts (panics) when asked for the name of an address shorter than its family
    // field, which is what `recvmsg` leaves when the kernel fills in no address.
    if (unix.len() as usize) < std::mem::size_of::<libc::sa_family_t>() {
        return None;
    }
    if let Some(name) = unix.as_abstract() {
        return Some(SockAddr::Unix {
            path: String::from_utf8_lossy(name).into_owned(),
            r#abstract: true,
        });
    }
    Some(SockAddr::Unix {
        path: unix
            .path()
            .map(|path| String::from_utf8_lossy(path.as_os_str().as_bytes()).into_owned())
            .unwrap_or_default(),
        r#abstract: false,
    })
}
