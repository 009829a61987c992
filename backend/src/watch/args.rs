//! A watched call's arguments and results, decoded from the program's registers and memory:
//! names for constants and flags, addresses as the page writes them, the bytes sent and
//! received (cut at [`MAX_DATA`] and marked so).

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::ser::{Serialize, SerializeMap, Serializer};
use shared::{Bytes, SockAddr};

/// The most bytes of one call's data that an event carries; the count of all of them is
/// always there (`size`).
pub(crate) const MAX_DATA: usize = 256;

/// One decoded argument or result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Arg {
    /// A number: a descriptor, a length, a backlog, a timeout.
    Int(i64),
    /// A constant or flags by name (`AF_INET`, `SOCK_STREAM|SOCK_CLOEXEC`, `MSG_PEEK`).
    Name(String),
    /// A socket address.
    Address(SockAddr),
    /// An address of a family Socket Lab does not decode (netlink, packet).
    OtherAddress {
        /// The family's number.
        family: u16,
    },
    /// Bytes, the first [`MAX_DATA`] of them.
    Data(Bytes),
    /// Descriptors, such as `socketpair`'s two or the sockets a `poll` waits on.
    Fds(Vec<i32>),
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Int(value) => write!(f, "{value}"),
            Arg::Name(name) => f.write_str(name),
            Arg::Address(address) => write!(f, "{address}"),
            Arg::OtherAddress { family } => write!(f, "{{family {family}}}"),
            Arg::Data(bytes) => write!(f, "{bytes}"),
            Arg::Fds(fds) => {
                let fds: Vec<String> = fds.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", fds.join(", "))
            }
        }
    }
}

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Arg::Int(value) => serializer.serialize_i64(*value),
            Arg::Name(name) => serializer.serialize_str(name),
            Arg::Address(address) => address.serialize(serializer),
            Arg::OtherAddress { family } => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("family", family)?;
                map.end()
            }
            Arg::Data(bytes) => bytes.serialize(serializer),
            Arg::Fds(fds) => fds.serialize(serializer),
        }
    }
}

/// Named arguments in the order the call takes them; a JSON object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Args(pub(crate) Vec<(&'static str, Arg)>);

impl Args {
    pub(crate) fn push(&mut self, name: &'static str, arg: Arg) {
        self.0.push((name, arg));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The arguments as the terminal shows them: `fd=3, address=('127.0.0.1', 12345)`.
    pub(crate) fn text(&self) -> String {
        let mut text = String::new();
        for (index, (name, arg)) in self.0.iter().enumerate() {
            if index > 0 {
                text.push_str(", ");
            }
            let _ = write!(text, "{name}={arg}");
        }
        text
    }
}

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, arg) in &self.0 {
            map.serialize_entry(name, arg)?;
        }
        map.end()
    }
}

/// A `struct sockaddr` of `bytes` (as long as the call said it is), decoded.
pub(crate) fn sockaddr(bytes: &[u8]) -> Option<Arg> {
    let family = u16::from_ne_bytes(bytes.get(0..2)?.try_into().ok()?);
    let be16 = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
    };
    let arg = match i32::from(family) {
        libc::AF_INET => Arg::Address(SockAddr::Inet {
            port: be16(2)?,
            host: Ipv4Addr::from(<[u8; 4]>::try_from(bytes.get(4..8)?).ok()?),
        }),
        libc::AF_INET6 => Arg::Address(SockAddr::Inet6 {
            port: be16(2)?,
            flowinfo: u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?),
            host: Ipv6Addr::from(<[u8; 16]>::try_from(bytes.get(8..24)?).ok()?),
            scope_id: u32::from_ne_bytes(bytes.get(24..28)?.try_into().ok()?),
        }),
        libc::AF_UNIX => {
            let name = bytes.get(2..).unwrap_or_default();
            let (is_abstract, name) = match name.split_first() {
                Some((0, rest)) => (true, rest),
                // A path ends at its first NUL, if the program passed one.
                _ => (false, name.split(|&b| b == 0).next().unwrap_or_default()),
            };
            Arg::Address(SockAddr::Unix {
                path: String::from_utf8_lossy(name).into_owned(),
                r#abstract: is_abstract,
            })
        }
        _ => Arg::OtherAddress { family },
    };
    Some(arg)
}

/// Names of the first argument of `socket()`.
pub(crate) fn family(domain: u64) -> Arg {
    let name = match domain as i32 {
        libc::AF_UNIX => "AF_UNIX",
        libc::AF_INET => "AF_INET",
        libc::AF_INET6 => "AF_INET6",
        libc::AF_NETLINK => "AF_NETLINK",
        libc::AF_PACKET => "AF_PACKET",
        _ => return Arg::Int(domain as i64),
    };
    Arg::Name(name.to_owned())
}

/// The second argument of `socket()`: the type and its flags.
pub(crate) fn sock_type(value: u64) -> Arg {
    let value = value as i32;
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let base = match value & !flags {
        libc::SOCK_STREAM => "SOCK_STREAM".to_owned(),
        libc::SOCK_DGRAM => "SOCK_DGRAM".to_owned(),
        libc::SOCK_RAW => "SOCK_RAW".to_owned(),
        libc::SOCK_SEQPACKET => "SOCK_SEQPACKET".to_owned(),
        other => other.to_string(),
    };
    Arg::Name(with_flags(
        base,
        value & flags,
        &[
            (libc::SOCK_NONBLOCK, "SOCK_NONBLOCK"),
            (libc::SOCK_CLOEXEC, "SOCK_CLOEXEC"),
        ],
    ))
}

/// `MSG_*` flags of a send or a receive.
pub(crate) fn msg_flags(value: u64) -> Arg {
    const NAMES: &[(i32, &str)] = &[
        (libc::MSG_OOB, "MSG_OOB"),
        (libc::MSG_PEEK, "MSG_PEEK"),
        (libc::MSG_DONTROUTE, "MSG_DONTROUTE"),
        (libc::MSG_TRUNC, "MSG_TRUNC"),
        (libc::MSG_DONTWAIT, "MSG_DONTWAIT"),
        (libc::MSG_EOR, "MSG_EOR"),
        (libc::MSG_WAITALL, "MSG_WAITALL"),
        (libc::MSG_NOSIGNAL, "MSG_NOSIGNAL"),
        (libc::MSG_MORE, "MSG_MORE"),
        (libc::MSG_CMSG_CLOEXEC, "MSG_CMSG_CLOEXEC"),
    ];
    if value == 0 {
        return Arg::Int(0);
    }
    Arg::Name(with_flags(String::new(), value as i32, NAMES))
}

/// `SOCK_*` flags of `accept4`.
pub(crate) fn accept_flags(value: u64) -> Arg {
    if value == 0 {
        return Arg::Int(0);
    }
    Arg::Name(with_flags(
        String::new(),
        value as i32,
        &[
            (libc::SOCK_NONBLOCK, "SOCK_NONBLOCK"),
            (libc::SOCK_CLOEXEC, "SOCK_CLOEXEC"),
        ],
    ))
}

/// `O_*` flags of `fcntl(F_SETFL)`.
pub(crate) fn file_flags(value: u64) -> Arg {
    if value == 0 {
        return Arg::Int(0);
    }
    Arg::Name(with_flags(
        String::new(),
        value as i32,
        &[
            (libc::O_NONBLOCK, "O_NONBLOCK"),
            (libc::O_APPEND, "O_APPEND"),
            (libc::O_ASYNC, "O_ASYNC"),
        ],
    ))
}

/// `SHUT_*` of `shutdown()`.
pub(crate) fn shutdown_how(value: u64) -> Arg {
    match value as i32 {
        libc::SHUT_RD => Arg::Name("SHUT_RD".to_owned()),
        libc::SHUT_WR => Arg::Name("SHUT_WR".to_owned()),
        libc::SHUT_RDWR => Arg::Name("SHUT_RDWR".to_owned()),
        other => Arg::Int(other.into()),
    }
}

/// The level and name of a socket option.
pub(crate) fn sockopt(level: u64, name: u64) -> (Arg, Arg) {
    let (level, name) = (level as i32, name as i32);
    let named = |text: &str| Arg::Name(text.to_owned());
    match level {
        libc::SOL_SOCKET => {
            let option = match name {
                libc::SO_REUSEADDR => "SO_REUSEADDR",
                libc::SO_REUSEPORT => "SO_REUSEPORT",
                libc::SO_KEEPALIVE => "SO_KEEPALIVE",
                libc::SO_LINGER => "SO_LINGER",
                libc::SO_RCVBUF => "SO_RCVBUF",
                libc::SO_SNDBUF => "SO_SNDBUF",
                libc::SO_RCVTIMEO => "SO_RCVTIMEO",
                libc::SO_SNDTIMEO => "SO_SNDTIMEO",
                libc::SO_ERROR => "SO_ERROR",
                libc::SO_TYPE => "SO_TYPE",
                libc::SO_DOMAIN => "SO_DOMAIN",
                libc::SO_PROTOCOL => "SO_PROTOCOL",
                libc::SO_ACCEPTCONN => "SO_ACCEPTCONN",
                libc::SO_BROADCAST => "SO_BROADCAST",
                libc::SO_PASSCRED => "SO_PASSCRED",
                libc::SO_PEERCRED => "SO_PEERCRED",
                _ => return (named("SOL_SOCKET"), Arg::Int(name.into())),
            };
            (named("SOL_SOCKET"), named(option))
        }
        libc::IPPROTO_TCP => {
            let option = match name {
                libc::TCP_NODELAY => "TCP_NODELAY",
                libc::TCP_KEEPIDLE => "TCP_KEEPIDLE",
                libc::TCP_KEEPINTVL => "TCP_KEEPINTVL",
                libc::TCP_KEEPCNT => "TCP_KEEPCNT",
                libc::TCP_INFO => "TCP_INFO",
                libc::TCP_CORK => "TCP_CORK",
                _ => return (named("IPPROTO_TCP"), Arg::Int(name.into())),
            };
            (named("IPPROTO_TCP"), named(option))
        }
        libc::IPPROTO_IP => (named("IPPROTO_IP"), Arg::Int(name.into())),
        libc::IPPROTO_IPV6 => {
            let option = match name {
                libc::IPV6_V6ONLY => named("IPV6_V6ONLY"),
                _ => Arg::Int(name.into()),
            };
            (named("IPPROTO_IPV6"), option)
        }
        _ => (Arg::Int(level.into()), Arg::Int(name.into())),
    }
}

/// A socket option's value as the program passed it: an `int`, or `struct linger`.
pub(crate) fn sockopt_value(bytes: &[u8]) -> Arg {
    let int = |at: usize| -> Option<i32> {
        Some(i32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    match (bytes.len(), int(0), int(4)) {
        (4, Some(value), _) => Arg::Int(value.into()),
        (8, Some(on), Some(seconds)) => Arg::Name(format!("{{l_onoff={on}, l_linger={seconds}}}")),
        _ => Arg::Data(Bytes(bytes.to_vec())),
    }
}

/// `poll` events by name.
pub(crate) fn poll_events(value: i16) -> String {
    let names = [
        (libc::POLLIN, "POLLIN"),
        (libc::POLLPRI, "POLLPRI"),
        (libc::POLLOUT, "POLLOUT"),
        (libc::POLLERR, "POLLERR"),
        (libc::POLLHUP, "POLLHUP"),
        (libc::POLLNVAL, "POLLNVAL"),
        (libc::POLLRDHUP, "POLLRDHUP"),
    ];
    with_flags(
        String::new(),
        value.into(),
        &names.map(|(flag, name)| (i32::from(flag), name)),
    )
}

/// `base` (a socket type, or nothing), then each flag of `value` by name, then whatever bits
/// no name covers as a number.
fn with_flags(base: String, value: i32, names: &[(i32, &str)]) -> String {
    let mut parts = if base.is_empty() {
        Vec::new()
    } else {
        vec![base]
    };
    let mut left = value;
    for &(flag, name) in names {
        if flag != 0 && value & flag == flag {
            parts.push(name.to_owned());
            left &= !flag;
        }
    }
    if left != 0 || parts.is_empty() {
        parts.push(format!("{left:#x}"));
    }
    parts.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_decode_as_the_page_writes_them() {
        let mut inet = vec![0u8; 16];
        inet[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        inet[2..4].copy_from_slice(&12345u16.to_be_bytes());
        inet[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(sockaddr(&inet).unwrap().to_string(), "('127.0.0.1', 12345)");
        let mut unix = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        unix.extend_from_slice(b"/tmp/s.sock\0garbage");
        assert_eq!(sockaddr(&unix).unwrap().to_string(), "'/tmp/s.sock'");
        let mut abstract_name = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        abstract_name.extend_from_slice(b"\0lab");
        assert_eq!(sockaddr(&abstract_name).unwrap().to_string(), "b'\\x00lab'");
        let netlink = (libc::AF_NETLINK as u16).to_ne_bytes();
        assert_eq!(
            sockaddr(&netlink).unwrap(),
            Arg::OtherAddress { family: 16 }
        );
        // A length too short for its family is no address at all, not a made-up one.
        assert_eq!(sockaddr(&inet[..6]), None);
        assert_eq!(sockaddr(&[]), None);
    }

    #[test]
    fn constants_and_flags_read_by_name() {
        let stream = (libc::SOCK_STREAM | libc::SOCK_CLOEXEC) as u64;
        assert_eq!(sock_type(stream).to_string(), "SOCK_STREAM|SOCK_CLOEXEC");
        assert_eq!(sock_type(libc::SOCK_DGRAM as u64).to_string(), "SOCK_DGRAM");
        assert_eq!(family(libc::AF_INET6 as u64).to_string(), "AF_INET6");
        assert_eq!(family(99).to_string(), "99");
        let flags = (libc::MSG_PEEK | libc::MSG_DONTWAIT) as u64;
        assert_eq!(msg_flags(flags).to_string(), "MSG_PEEK|MSG_DONTWAIT");
        assert_eq!(msg_flags(0).to_string(), "0");
        assert_eq!(msg_flags(0x1000_0000).to_string(), "0x10000000");
        assert_eq!(
            file_flags((libc::O_NONBLOCK | libc::O_RDWR) as u64).to_string(),
            "O_NONBLOCK|0x2"
        );
        assert_eq!(shutdown_how(1).to_string(), "SHUT_WR");
        let (level, option) = sockopt(libc::SOL_SOCKET as u64, libc::SO_REUSEADDR as u64);
        assert_eq!(
            (level.to_string(), option.to_string()),
            ("SOL_SOCKET".into(), "SO_REUSEADDR".into())
        );
        assert_eq!(sockopt_value(&1i32.to_ne_bytes()), Arg::Int(1));
        let mut linger = 1i32.to_ne_bytes().to_vec();
        linger.extend_from_slice(&0i32.to_ne_bytes());
        assert_eq!(
            sockopt_value(&linger).to_string(),
            "{l_onoff=1, l_linger=0}"
        );
        assert_eq!(poll_events(libc::POLLIN | libc::POLLOUT), "POLLIN|POLLOUT");
    }
}
