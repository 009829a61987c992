//! The nouns of the socket API, serialised as Python's `socket` module names them.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address family: the first argument of `socket.socket(family, type)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    /// IPv4.
    #[serde(rename = "AF_INET")]
    Inet,
    /// IPv6.
    #[serde(rename = "AF_INET6")]
    Inet6,
    /// Unix domain sockets, named by a path on this machine.
    #[serde(rename = "AF_UNIX")]
    Unix,
}

impl Family {
    /// Every family, in the order of the enum.
    pub const ALL: [Family; 3] = [Family::Inet, Family::Inet6, Family::Unix];

    /// The constant's name in Python's `socket` module.
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "AF_INET",
            Family::Inet6 => "AF_INET6",
            Family::Unix => "AF_UNIX",
        }
    }
}

/// A socket type: the second argument of `socket.socket(family, type)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SockType {
    /// A connection-oriented byte stream (TCP over IP).
    #[serde(rename = "SOCK_STREAM")]
    Stream,
    /// Connectionless datagrams (UDP over IP).
    #[serde(rename = "SOCK_DGRAM")]
    Dgram,
}

impl SockType {
    /// Every socket type, in the order of the enum.
    pub const ALL: [SockType; 2] = [SockType::Stream, SockType::Dgram];

    /// The constant's name in Python's `socket` module.
    pub fn name(self) -> &'static str {
        match self {
            SockType::Stream => "SOCK_STREAM",
            SockType::Dgram => "SOCK_DGRAM",
        }
    }
}

/// A socket address, as the kernel reports it (from `getsockname`, `getpeername`, `accept`).
///
/// Read from JSON, a host may be written any way the C library would read it, and is
/// normalised on the way in (see [`parse_host_v4`] and [`parse_host_v6`]): `127.1`,
/// `0x7f000001` and `localhost` all arrive as `127.0.0.1`, `fe80::1%2` as `fe80::1` with
/// `scope_id` 2. Whatever checks an address afterwards sees only the one canonical form.
/// Written to JSON, a host is always canonical.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "family", try_from = "SockAddrText")]
pub enum SockAddr {
    /// An IPv4 address and port: Python's `(host, port)`.
    #[serde(rename = "AF_INET")]
    Inet {
        /// The IPv4 address, as dotted decimal in JSON.
        host: Ipv4Addr,
        /// The port number.
        port: u16,
    },
    /// An IPv6 address: Python's `(host, port, flowinfo, scope_id)`.
    #[serde(rename = "AF_INET6")]
    Inet6 {
        /// The IPv6 address, in its canonical text form in JSON.
        host: Ipv6Addr,
        /// The port number.
        port: u16,
        /// The flow label.
        #[serde(default)]
        flowinfo: u32,
        /// The scope (interface) id of a link-local address.
        #[serde(default)]
        scope_id: u32,
    },
    /// A Unix domain socket's name.
    #[serde(rename = "AF_UNIX")]
    Unix {
        /// The path (or, for an abstract name, the name without its leading NUL).
        /// Empty for an unnamed socket.
        path: String,
        /// Whether the name lives in Linux's abstract namespace rather than the file system.
        #[serde(default, skip_serializing_if = "is_false")]
        r#abstract: bool,
    },
}

/// [`SockAddr`] as it arrives, with its host still text.
#[derive(Deserialize)]
#[serde(tag = "family")]
pub(crate) enum SockAddrText {
    #[serde(rename = "AF_INET")]
    Inet { host: String, port: u16 },
    #[serde(rename = "AF_INET6")]
    Inet6 {
        host: String,
        port: u16,
        #[serde(default)]
        flowinfo: u32,
        #[serde(default)]
        scope_id: u32,
    },
    #[serde(rename = "AF_UNIX")]
    Unix {
        path: String,
        #[serde(default)]
        r#abstract: bool,
    },
}

impl TryFrom<SockAddrText> for SockAddr {
    type Error = String;

    fn try_from(text: SockAddrText) -> Result<Self, String> {
        Ok(match text {
            SockAddrText::Inet { host, port } => SockAddr::Inet {
                host: parse_host_v4(&host)?,
                port,
            },
            SockAddrText::Inet6 {
                host,
                port,
                flowinfo,
                scope_id,
            } => {
                let (host, scope) = parse_host_v6(&host)?;
                let scope_id = match scope {
                    Some(scope) if scope_id != 0 && scope != scope_id => {
                        return Err(format!(
                            "the host names scope {scope} but scope_id is {scope_id}"
                        ));
                    }
                    Some(scope) => scope,
                    None => scope_id,
                };
                SockAddr::Inet6 {
                    host,
                    port,
                    flowinfo,
                    scope_id,
                }
            }
            SockAddrText::Unix { path, r#abstract } => SockAddr::Unix { path, r#abstract },
        })
    }
}

/// The longest host text read; anything longer is not an address.
const MAX_HOST_TEXT: usize = 64;

/// Reads an IPv4 host as the C library's `inet_aton` does (and so as Python's `connect`
/// does): one to four parts, each decimal, hexadecimal (`0x7f`) or octal (`0177`), the last
/// filling the bytes that remain, so `127.1` is `127.0.0.1` and `2130706433` is too.
/// `localhost` and names ending in `.localhost` are `127.0.0.1`, as RFC 6761 reserves them.
/// No other name is looked up: Socket Lab resolves nothing through DNS, so the address a
/// check approves is the address used.
pub fn parse_host_v4(text: &str) -> Result<Ipv4Addr, String> {
    if is_localhost(text) {
        return Ok(Ipv4Addr::LOCALHOST);
    }
    let not_address = || {
        format!(
            "'{}' is not an IPv4 address (write it as 127.0.0.1, or as the C library \
             reads it, such as 127.1; names other than localhost are not looked up)",
            text.chars().take(MAX_HOST_TEXT).collect::<String>()
        )
    };
    if text.is_empty() || text.len() > MAX_HOST_TEXT {
        return Err(not_address());
    }
    let parts: Vec<u32> = text
        .split('.')
        .map(parse_aton_part)
        .collect::<Option<_>>()
        .ok_or_else(not_address)?;
    let (last, leading) = parts.split_last().ok_or_else(not_address)?;
    if leading.len() > 3 || leading.iter().any(|&part| part > 0xff) {
        return Err(not_address());
    }
    // The last part fills every byte the leading parts leave.
    let last_bits = 32 - 8 * u32::try_from(leading.len()).map_err(|_| not_address())?;
    if last_bits < 32 && *last >= (1 << last_bits) {
        return Err(not_address());
    }
    let value = leading
        .iter()
        .enumerate()
        .fold(*last, |value, (index, part)| {
            value | (part << (24 - 8 * index))
        });
    Ok(Ipv4Addr::from(value))
}

/// One part of an `inet_aton` address: decimal, `0x` hexadecimal, or octal with a leading 0.
fn parse_aton_part(part: &str) -> Option<u32> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() && radix != 16 || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // `0x` alone is 0 for inet_aton.
    if digits.is_empty() {
        return Some(0);
    }
    u32::from_str_radix(digits, radix).ok()
}

/// Reads an IPv6 host: the standard text forms (`::1`, `::ffff:127.0.0.1`), optionally in
/// brackets, with an optional numeric scope (`fe80::1%2`), or `localhost` for `::1`.
/// Returns the address and the scope if one was written.
pub fn parse_host_v6(text: &str) -> Result<(Ipv6Addr, Option<u32>), String> {
    if is_localhost(text) {
        return Ok((Ipv6Addr::LOCALHOST, None));
    }
    let shown = || text.chars().take(MAX_HOST_TEXT).collect::<String>();
    if text.len() > MAX_HOST_TEXT {
        return Err(format!("'{}...' is not an IPv6 address", shown()));
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(text);
    let (address, scope) = match bare.split_once('%') {
        Some((address, scope)) => {
            let scope = scope.parse::<u32>().map_err(|_| {
                format!(
                    "the scope of '{}' must be an interface number such as %1 (names of \
                     interfaces are not looked up)",
                    shown()
                )
            })?;
            (address, Some(scope))
        }
        None => (bare, None),
    };
    let address = address.parse::<Ipv6Addr>().map_err(|_| {
        format!(
            "'{}' is not an IPv6 address (write it as ::1 or ::ffff:127.0.0.1)",
            shown()
        )
    })?;
    Ok((address, scope))
}

fn is_localhost(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let lower = lower.strip_suffix('.').unwrap_or(&lower);
    lower == "localhost" || lower.ends_with(".localhost")
}

fn is_false(value: &bool) -> bool {
    !value
}

impl SockAddr {
    /// The port, for the address families that have one.
    pub fn port(&self) -> Option<u16> {
        match self {
            SockAddr::Inet { port, .. } | SockAddr::Inet6 { port, .. } => Some(*port),
            SockAddr::Unix { .. } => None,
        }
    }
}

/// Shows an address as Python prints it: `('127.0.0.1', 12345)`.
impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockAddr::Inet { host, port } => write!(f, "('{host}', {port})"),
            SockAddr::Inet6 {
                host,
                port,
                flowinfo,
                scope_id,
            } => write!(f, "('{host}', {port}, {flowinfo}, {scope_id})"),
            SockAddr::Unix { path, r#abstract } if *r#abstract => {
                write!(f, "b'\\x00{}'", escape_bytes(path.as_bytes()))
            }
            SockAddr::Unix { path, .. } => write!(f, "'{path}'"),
        }
    }
}

/// A byte string sent or received.
///
/// In JSON it is an object: `len` (the byte count), `text` (the bytes as Python would print
/// them inside `b'...'`, so printable ASCII reads as itself) and `hex` (the exact bytes). Only
/// `hex` is read back; `len` and `text` are there for people and for tools like `jq`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes as Python prints them between the quotes of `b'...'`.
    pub fn escaped(&self) -> String {
        escape_bytes(&self.0)
    }

    /// The bytes as Python prints them, at most the first `max` of them, for a place with
    /// room for a glance (an endpoint's card, an arrow of the diagram): `b'Hello'`, or, when
    /// there are more, `b'xxxxxxxx'… (1024 bytes)`.
    pub fn preview(&self, max: usize) -> String {
        match self.0.get(..max) {
            Some(head) if head.len() < self.len() => {
                format!("b'{}'… ({} bytes)", escape_bytes(head), self.len())
            }
            _ => self.to_string(),
        }
    }

    /// The bytes in hexadecimal with their count, at most the first `max` of them:
    /// `5 B: 68656c6c6f`, or `1024 B: 7878…`.
    pub fn hex_preview(&self, max: usize) -> String {
        let shown = Bytes::from(&self.0[..max.min(self.len())]).hex();
        let more = if max < self.len() { "…" } else { "" };
        format!("{} B: {shown}{more}", self.len())
    }

    /// The bytes as lowercase hexadecimal, two digits a byte.
    pub fn hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(self.0.len() * 2);
        for byte in &self.0 {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Parses lowercase or uppercase hexadecimal, two digits a byte.
    pub fn from_hex(hex: &str) -> Result<Self, String> {
        if !hex.len().is_multiple_of(2) {
            return Err(format!("hex has an odd number of digits ({})", hex.len()));
        }
        hex.as_bytes()
            .chunks(2)
            .map(|pair| {
                let digit = |c: u8| {
                    char::from(c)
                        .to_digit(16)
                        .ok_or_else(|| format!("'{}' is not a hex digit", char::from(c)))
                };
                Ok(u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?)
                    .expect("two hex digits make a byte"))
            })
            .collect::<Result<Vec<u8>, String>>()
            .map(Bytes)
    }
}

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Self {
        Bytes(bytes.to_vec())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes(bytes)
    }
}

/// Shows the bytes as Python's `repr`: `b'Connection is successful'`.
impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b'{}'", self.escaped())
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Serialize, Deserialize)]
struct BytesRepr {
    len: usize,
    #[serde(default)]
    text: String,
    hex: String,
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        BytesRepr {
            len: self.len(),
            text: self.escaped(),
            hex: self.hex(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = BytesRepr::deserialize(deserializer)?;
        let bytes = Bytes::from_hex(&repr.hex).map_err(serde::de::Error::custom)?;
        if bytes.len() != repr.len {
            return Err(serde::de::Error::custom(format!(
                "len is {} but hex holds {} bytes",
                repr.len,
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

/// Escapes bytes the way Python's `bytes.__repr__` does between single quotes.
fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_show_the_first_bytes_and_how_many_there_are() {
        let hello = Bytes(b"hello".to_vec());
        assert_eq!(hello.preview(5), "b'hello'");
        assert_eq!(hello.preview(100), "b'hello'");
        assert_eq!(hello.preview(2), "b'he'… (5 bytes)");
        assert_eq!(
            Bytes(vec![0, b'\n', 200]).preview(2),
            "b'\\x00\\n'… (3 bytes)"
        );
        assert_eq!(Bytes::default().preview(0), "b''");
        assert_eq!(hello.hex_preview(5), "5 B: 68656c6c6f");
        assert_eq!(hello.hex_preview(2), "5 B: 6865…");
        assert_eq!(Bytes::default().hex_preview(4), "0 B: ");
    }

    #[test]
    fn every_family_type_and_shutdown_is_listed_once_and_reads_back_by_its_name() {
        use crate::Shutdown;
        use crate::decode::assert_every_value_listed_once;
        assert_every_value_listed_once(
            &Family::ALL,
            |family| match family {
                Family::Inet => 0,
                Family::Inet6 => 1,
                Family::Unix => 2,
            },
            Family::name,
        );
        assert_every_value_listed_once(
            &SockType::ALL,
            |kind| match kind {
                SockType::Stream => 0,
                SockType::Dgram => 1,
            },
            SockType::name,
        );
        assert_every_value_listed_once(
            &Shutdown::ALL,
            |how| match how {
                Shutdown::Read => 0,
                Shutdown::Write => 1,
                Shutdown::Both => 2,
            },
            Shutdown::name,
        );
    }

    #[test]
    fn bytes_print_like_python_repr() {
        let bytes = Bytes(b"it's\n\x00\xffok\\".to_vec());
        assert_eq!(bytes.to_string(), r"b'it\'s\n\x00\xffok\\'");
    }

    #[test]
    fn bytes_round_trip_through_json_with_readable_text() {
        let bytes = Bytes(b"Connection is successful\x01".to_vec());
        let json = serde_json::to_value(&bytes).unwrap();
        assert_eq!(json["len"], 25);
        assert_eq!(json["text"], "Connection is successful\\x01");
        let back: Bytes = serde_json::from_value(json).unwrap();
        assert_eq!(back, bytes);
    }

    #[test]
    fn bytes_reject_bad_hex_and_wrong_len() {
        for bad in [
            r#"{"len":1,"hex":"0"}"#,
            r#"{"len":1,"hex":"zz"}"#,
            r#"{"len":2,"hex":"00"}"#,
            r#"{"len":1}"#,
        ] {
            assert!(
                serde_json::from_str::<Bytes>(bad).is_err(),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn every_spelling_of_an_ipv4_host_is_read_as_inet_aton_reads_it() {
        let loopback = Ipv4Addr::new(127, 0, 0, 1);
        for spelling in [
            "127.0.0.1",
            "127.1",
            "127.0.1",
            "0x7f000001",
            "0X7F.1",
            "2130706433",
            "0177.0.0.1",
            "0x7f.0.0.0x1",
            "localhost",
            "LOCALHOST",
            "student.localhost",
            "localhost.",
        ] {
            assert_eq!(parse_host_v4(spelling), Ok(loopback), "{spelling}");
        }
        assert_eq!(parse_host_v4("10.1"), Ok(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(parse_host_v4("0"), Ok(Ipv4Addr::UNSPECIFIED));
        assert_eq!(parse_host_v4("1.2.3.4"), Ok(Ipv4Addr::new(1, 2, 3, 4)));
        for bad in [
            "",
            "256.0.0.1",
            "127.0.0.1.",
            "1.2.3.4.5",
            "127.0x1000000",
            "4294967296",
            "08",
            "127.0.0.1 ",
            " 127.0.0.1",
            "+127.0.0.1",
            "-1",
            "example.com",
            "localhost.example",
            "::1",
        ] {
            assert!(parse_host_v4(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn ipv6_hosts_are_read_with_their_scope() {
        assert_eq!(parse_host_v6("::1"), Ok((Ipv6Addr::LOCALHOST, None)));
        assert_eq!(parse_host_v6("[::1]"), Ok((Ipv6Addr::LOCALHOST, None)));
        assert_eq!(parse_host_v6("localhost"), Ok((Ipv6Addr::LOCALHOST, None)));
        assert_eq!(
            parse_host_v6("::ffff:127.0.0.1"),
            Ok((Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped(), None))
        );
        assert_eq!(
            parse_host_v6("fe80::1%2"),
            Ok(("fe80::1".parse().unwrap(), Some(2)))
        );
        for bad in ["fe80::1%eth0", "127.0.0.1", "::1%", "[::1", "example.com"] {
            assert!(parse_host_v6(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn addresses_arrive_normalised() {
        let read = |json: &str| serde_json::from_str::<SockAddr>(json);
        assert_eq!(
            read(r#"{"family":"AF_INET","host":"0x7f000001","port":80}"#).unwrap(),
            SockAddr::Inet {
                host: Ipv4Addr::new(127, 0, 0, 1),
                port: 80
            }
        );
        assert_eq!(
            read(r#"{"family":"AF_INET6","host":"fe80::1%3","port":80}"#).unwrap(),
            SockAddr::Inet6 {
                host: "fe80::1".parse().unwrap(),
                port: 80,
                flowinfo: 0,
                scope_id: 3
            }
        );
        assert!(
            read(r#"{"family":"AF_INET6","host":"fe80::1%3","port":80,"scope_id":4}"#).is_err()
        );
        assert!(read(r#"{"family":"AF_INET","host":"example.com","port":80}"#).is_err());
        assert!(read(r#"{"family":"AF_INET","host":"127.0.0.1","port":65536}"#).is_err());
    }

    #[test]
    fn addresses_print_like_python_tuples() {
        let inet = SockAddr::Inet {
            host: Ipv4Addr::new(127, 0, 0, 1),
            port: 12345,
        };
        assert_eq!(inet.to_string(), "('127.0.0.1', 12345)");
        let json = serde_json::to_value(&inet).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"family": "AF_INET", "host": "127.0.0.1", "port": 12345})
        );
        let unix = SockAddr::Unix {
            path: "lab".into(),
            r#abstract: true,
        };
        assert_eq!(unix.to_string(), r"b'\x00lab'");
    }
}
