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
    /// The constant's name in Python's `socket` module.
    pub fn name(self) -> &'static str {
        match self {
            SockType::Stream => "SOCK_STREAM",
            SockType::Dgram => "SOCK_DGRAM",
        }
    }
}

/// A socket address, as the kernel reports it (from `getsockname`, `getpeername`, `accept`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "family")]
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
