//! The manual mode's form: the fields a user fills in, checked and turned into a [`Call`].
//!
//! Plain Rust, tested natively. Every field is checked here, before anything is sent, with a
//! message that says what to type instead; the kernel's own errors come back as events.

use shared::{Bytes, Call, Family, MAX_RECV_BUFSIZE, SockAddr, SockOption, SockType};

/// The calls the form offers, in the order a program usually makes them.
pub const CALLS: &[&str] = &[
    "socket",
    "bind",
    "listen",
    "accept",
    "connect",
    "send",
    "sendall",
    "recv",
    "sendto",
    "recvfrom",
    "shutdown",
    "getsockname",
    "getpeername",
    "setsockopt",
    "setblocking",
    "settimeout",
    "close",
    "gethostname",
];

/// The fields a call needs, so that the form shows only those.
pub fn fields(call: &str) -> &'static [&'static str] {
    match call {
        "socket" => &["family", "type"],
        "bind" | "connect" => &["address"],
        "listen" => &["backlog"],
        "send" | "sendall" => &["data"],
        "sendto" => &["data", "address"],
        "recv" | "recvfrom" => &["bufsize"],
        "shutdown" => &["how"],
        "setsockopt" => &["option", "value"],
        "setblocking" => &["flag"],
        "settimeout" => &["timeout"],
        _ => &[],
    }
}

/// How a field of the manual form is filled in.
#[derive(Debug)]
pub enum FieldInput {
    /// Typed, with an example as the placeholder.
    Text { placeholder: &'static str },
    /// Chosen from a list.
    Choice { options: &'static [&'static str] },
    /// Ticked or not: the field reads `true` or `false`.
    Check,
}

/// A field of the manual form, bound to one of [`CallForm`]'s. The page draws every field
/// with one view, from this table: a view written out per field was its own copy of the view
/// code in the wasm.
#[derive(Debug)]
pub struct FormField {
    /// The name [`fields`] gives it.
    pub name: &'static str,
    /// Shown for every call, not only those that need it.
    pub always: bool,
    pub testid: &'static str,
    pub label: &'static str,
    pub input: FieldInput,
    pub get: fn(&CallForm) -> String,
    pub set: fn(&mut CallForm, String),
}

/// The manual form's fields, in the order the page shows them.
pub const FIELDS: &[FormField] = &[
    FormField {
        name: "endpoint",
        always: true,
        testid: "manual-endpoint",
        label: "socket",
        input: FieldInput::Text { placeholder: "s" },
        get: |f| f.endpoint.clone(),
        set: |f, v| f.endpoint = v,
    },
    FormField {
        name: "call",
        always: true,
        testid: "manual-call",
        label: "call",
        input: FieldInput::Choice { options: CALLS },
        get: |f| f.call.clone(),
        set: |f, v| f.call = v,
    },
    FormField {
        name: "family",
        always: false,
        testid: "manual-family",
        label: "family",
        input: FieldInput::Choice {
            options: &["AF_INET", "AF_INET6", "AF_UNIX"],
        },
        get: |f| f.family.clone(),
        set: |f, v| f.family = v,
    },
    FormField {
        name: "type",
        always: false,
        testid: "manual-type",
        label: "type",
        input: FieldInput::Choice {
            options: &["SOCK_STREAM", "SOCK_DGRAM"],
        },
        get: |f| f.sock_type.clone(),
        set: |f, v| f.sock_type = v,
    },
    FormField {
        name: "data",
        always: false,
        testid: "manual-data",
        label: "bytes",
        input: FieldInput::Text {
            placeholder: "Hello\\n",
        },
        get: |f| f.data.clone(),
        set: |f, v| f.data = v,
    },
    FormField {
        name: "address",
        always: false,
        testid: "manual-address",
        label: "address",
        input: FieldInput::Text {
            placeholder: "127.0.0.1:12345",
        },
        get: |f| f.address.clone(),
        set: |f, v| f.address = v,
    },
    FormField {
        name: "backlog",
        always: false,
        testid: "manual-backlog",
        label: "backlog",
        input: FieldInput::Text { placeholder: "5" },
        get: |f| f.backlog.clone(),
        set: |f, v| f.backlog = v,
    },
    FormField {
        name: "bufsize",
        always: false,
        testid: "manual-bufsize",
        label: "bufsize",
        input: FieldInput::Text {
            placeholder: "1024",
        },
        get: |f| f.bufsize.clone(),
        set: |f, v| f.bufsize = v,
    },
    FormField {
        name: "how",
        always: false,
        testid: "manual-how",
        label: "how",
        input: FieldInput::Choice {
            options: &["SHUT_RD", "SHUT_WR", "SHUT_RDWR"],
        },
        get: |f| f.how.clone(),
        set: |f, v| f.how = v,
    },
    FormField {
        name: "option",
        always: false,
        testid: "manual-option",
        label: "option",
        input: FieldInput::Choice {
            options: &[
                "SO_REUSEADDR",
                "SO_LINGER",
                "TCP_NODELAY",
                "SO_RCVBUF",
                "SO_SNDBUF",
            ],
        },
        get: |f| f.option.clone(),
        set: |f, v| f.option = v,
    },
    FormField {
        name: "value",
        always: false,
        testid: "manual-value",
        label: "value",
        input: FieldInput::Text { placeholder: "1" },
        get: |f| f.value.clone(),
        set: |f, v| f.value = v,
    },
    FormField {
        name: "flag",
        always: false,
        testid: "manual-flag",
        label: "blocking",
        input: FieldInput::Check,
        get: |f| f.flag.to_string(),
        set: |f, v| f.flag = v == "true",
    },
    FormField {
        name: "timeout",
        always: false,
        testid: "manual-timeout",
        label: "seconds",
        input: FieldInput::Text {
            placeholder: "None or 0.5",
        },
        get: |f| f.timeout.clone(),
        set: |f, v| f.timeout = v,
    },
];

/// What the user typed and chose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallForm {
    pub endpoint: String,
    pub call: String,
    pub family: String,
    pub sock_type: String,
    pub address: String,
    pub data: String,
    pub bufsize: String,
    pub backlog: String,
    pub how: String,
    pub option: String,
    pub value: String,
    pub flag: bool,
    pub timeout: String,
}

impl CallForm {
    /// A form ready for a first `socket` call.
    pub fn new() -> Self {
        CallForm {
            endpoint: "s".into(),
            call: "socket".into(),
            family: "AF_INET".into(),
            sock_type: "SOCK_STREAM".into(),
            address: "127.0.0.1:12345".into(),
            data: "Hello".into(),
            bufsize: "1024".into(),
            backlog: "5".into(),
            how: "SHUT_WR".into(),
            option: "SO_REUSEADDR".into(),
            value: "1".into(),
            flag: false,
            timeout: "0.5".into(),
        }
    }

    /// The endpoint and the call, or what is wrong with the form.
    pub fn build(&self) -> Result<(String, Call), String> {
        let endpoint = self.endpoint.trim().to_owned();
        shared::message::check_endpoint_name(&endpoint, self.call == "socket")?;
        let call = match self.call.as_str() {
            "socket" => Call::Socket {
                family: match self.family.as_str() {
                    "AF_INET" => Family::Inet,
                    "AF_INET6" => Family::Inet6,
                    "AF_UNIX" => Family::Unix,
                    other => return Err(format!("unknown family {other}")),
                },
                sock_type: match self.sock_type.as_str() {
                    "SOCK_STREAM" => SockType::Stream,
                    "SOCK_DGRAM" => SockType::Dgram,
                    other => return Err(format!("unknown type {other}")),
                },
            },
            "bind" => Call::Bind {
                address: parse_address(&self.address)?,
            },
            "connect" => Call::Connect {
                address: parse_address(&self.address)?,
            },
            "listen" => Call::Listen {
                backlog: self.backlog.trim().parse().map_err(|_| {
                    format!("the backlog must be a whole number, not '{}'", self.backlog)
                })?,
            },
            "send" => Call::Send {
                data: parse_data(&self.data),
            },
            "sendall" => Call::Sendall {
                data: parse_data(&self.data),
            },
            "sendto" => Call::Sendto {
                data: parse_data(&self.data),
                address: parse_address(&self.address)?,
            },
            "recv" => Call::Recv {
                bufsize: parse_bufsize(&self.bufsize)?,
            },
            "recvfrom" => Call::Recvfrom {
                bufsize: parse_bufsize(&self.bufsize)?,
            },
            "shutdown" => Call::Shutdown {
                how: match self.how.as_str() {
                    "SHUT_RD" => shared::Shutdown::Read,
                    "SHUT_WR" => shared::Shutdown::Write,
                    "SHUT_RDWR" => shared::Shutdown::Both,
                    other => return Err(format!("unknown shutdown direction {other}")),
                },
            },
            "setsockopt" => Call::Setsockopt {
                option: parse_option(&self.option, &self.value)?,
            },
            "setblocking" => Call::Setblocking { flag: self.flag },
            "settimeout" => Call::Settimeout {
                millis: parse_timeout(&self.timeout)?,
            },
            "accept" => Call::Accept,
            "getsockname" => Call::Getsockname,
            "getpeername" => Call::Getpeername,
            "close" => Call::Close,
            "gethostname" => Call::Gethostname,
            other => return Err(format!("unknown call {other}")),
        };
        Ok((endpoint, call))
    }
}

/// `127.0.0.1:12345`, `[::1]:8080`, a Unix path (`server.sock`, `/tmp/...`), or `@name` for
/// an abstract Unix name.
pub fn parse_address(text: &str) -> Result<SockAddr, String> {
    let text = text.trim();
    if let Some(name) = text.strip_prefix('@') {
        return Ok(SockAddr::Unix {
            path: name.to_owned(),
            r#abstract: true,
        });
    }
    if text.contains('/') || text.ends_with(".sock") {
        return Ok(SockAddr::Unix {
            path: text.to_owned(),
            r#abstract: false,
        });
    }
    let not_address = || {
        format!(
            "'{text}' is not an address: write 127.0.0.1:12345, localhost:12345, \
             [::1]:12345, a Unix path such as server.sock, or @name for an abstract Unix name"
        )
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(not_address)?;
    let port = match port.parse::<u16>() {
        Ok(port) => port,
        Err(_) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
            return Err(format!("the port must be 0 to 65535, not {port}"));
        }
        Err(_) => return Err(not_address()),
    };
    // IPv6 hosts are written in brackets, as in URLs, so that their colons are not the port's.
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let (host, scope) = shared::net::parse_host_v6(inner)?;
        return Ok(SockAddr::Inet6 {
            host,
            port,
            flowinfo: 0,
            scope_id: scope.unwrap_or(0),
        });
    }
    if host.contains(':') {
        return Err(not_address());
    }
    Ok(SockAddr::Inet {
        host: shared::net::parse_host_v4(host)?,
        port,
    })
}

/// The text as UTF-8 bytes, with `\n`, `\r`, `\t` and `\\` read as Python reads them.
pub fn parse_data(text: &str) -> Bytes {
    let mut bytes = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buffer = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => bytes.push(b'\n'),
            Some('r') => bytes.push(b'\r'),
            Some('t') => bytes.push(b'\t'),
            Some('\\') => bytes.push(b'\\'),
            Some(other) => {
                bytes.push(b'\\');
                let mut buffer = [0; 4];
                bytes.extend_from_slice(other.encode_utf8(&mut buffer).as_bytes());
            }
            None => bytes.push(b'\\'),
        }
    }
    Bytes(bytes)
}

fn parse_bufsize(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(size) if size <= MAX_RECV_BUFSIZE => Ok(size),
        _ => Err(format!(
            "the buffer size must be a whole number from 0 to {MAX_RECV_BUFSIZE}, not '{text}'"
        )),
    }
}

fn parse_option(option: &str, value: &str) -> Result<SockOption, String> {
    let value = value.trim();
    let number = || {
        value
            .parse::<u32>()
            .map_err(|_| format!("{option} needs a whole number, not '{value}'"))
    };
    let flag = || match value {
        "0" | "False" | "false" => Ok(false),
        "1" | "True" | "true" => Ok(true),
        _ => Err(format!("{option} is 0 or 1, not '{value}'")),
    };
    Ok(match option {
        "SO_REUSEADDR" => SockOption::ReuseAddr(flag()?),
        "TCP_NODELAY" => SockOption::NoDelay(flag()?),
        "SO_LINGER" if value.eq_ignore_ascii_case("off") || value.is_empty() => {
            SockOption::Linger(None)
        }
        "SO_LINGER" => SockOption::Linger(Some(number()?)),
        "SO_RCVBUF" => SockOption::RecvBuffer(number()?),
        "SO_SNDBUF" => SockOption::SendBuffer(number()?),
        other => return Err(format!("unknown option {other}")),
    })
}

/// Python's `settimeout` argument: `None`, or seconds (`0.5`).
fn parse_timeout(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.is_empty() || text == "None" {
        return Ok(None);
    }
    match decimal_millis(text) {
        Some(millis) if millis <= 86_400_000 => Ok(Some(millis)),
        _ => Err(format!(
            "the timeout is None or seconds from 0 to 86400, such as 0.5, not '{text}'"
        )),
    }
}

/// Seconds written as a decimal (`2`, `0.5`, `.25`, `1.0005`) in whole milliseconds, rounded
/// half up. Read digit by digit rather than through `f64`, whose parsing and formatting would
/// add some fifteen kilobytes to the page for this one field.
fn decimal_millis(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // The first three decimals are milliseconds; the fourth rounds them.
    let digit = |at: usize| {
        fraction
            .as_bytes()
            .get(at)
            .map_or(0, |byte| u64::from(byte - b'0'))
    };
    let millis = digit(0) * 100 + digit(1) * 10 + digit(2) + u64::from(digit(3) >= 5);
    whole.checked_mul(1000)?.checked_add(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(call: &str) -> CallForm {
        CallForm {
            call: call.into(),
            ..CallForm::new()
        }
    }

    #[test]
    fn a_filled_form_makes_its_call() {
        assert_eq!(
            CallForm::new().build(),
            Ok((
                "s".into(),
                Call::Socket {
                    family: Family::Inet,
                    sock_type: SockType::Stream
                }
            ))
        );
        let connect = form("connect").build().unwrap().1;
        assert_eq!(
            connect,
            Call::Connect {
                address: SockAddr::Inet {
                    host: [127, 0, 0, 1].into(),
                    port: 12345
                }
            }
        );
        let timeout = form("settimeout").build().unwrap().1;
        assert_eq!(timeout, Call::Settimeout { millis: Some(500) });
        let linger = CallForm {
            option: "SO_LINGER".into(),
            value: "0".into(),
            ..form("setsockopt")
        };
        assert_eq!(
            linger.build().unwrap().1,
            Call::Setsockopt {
                option: SockOption::Linger(Some(0))
            }
        );
    }

    #[test]
    fn timeouts_are_seconds_read_to_the_millisecond() {
        for (text, millis) in [
            ("None", None),
            ("", None),
            ("0", Some(0)),
            ("2", Some(2000)),
            ("0.5", Some(500)),
            (".25", Some(250)),
            ("3.", Some(3000)),
            ("1.0005", Some(1001)),
            ("1.0004", Some(1000)),
            ("0.9996", Some(1000)),
            ("86400", Some(86_400_000)),
            (" 1.5 ", Some(1500)),
        ] {
            assert_eq!(parse_timeout(text), Ok(millis), "{text:?}");
        }
        for wrong in [
            ".",
            "-1",
            "1e3",
            "1.2.3",
            "86400.001",
            "abc",
            "0x10",
            "99999999999999999999",
        ] {
            let error = parse_timeout(wrong).unwrap_err();
            assert!(error.contains("such as 0.5"), "{wrong:?}: {error}");
        }
    }

    #[test]
    fn addresses_of_every_kind_are_understood() {
        assert_eq!(
            parse_address("[::1]:8080"),
            Ok(SockAddr::Inet6 {
                host: std::net::Ipv6Addr::LOCALHOST,
                port: 8080,
                flowinfo: 0,
                scope_id: 0
            })
        );
        for spelling in ["127.1:80", "localhost:80", "0x7f000001:80", "127.0.0.1:80"] {
            assert_eq!(
                parse_address(spelling),
                Ok(SockAddr::Inet {
                    host: std::net::Ipv4Addr::LOCALHOST,
                    port: 80
                }),
                "{spelling}"
            );
        }
        assert_eq!(
            parse_address("[fe80::1%2]:80"),
            Ok(SockAddr::Inet6 {
                host: "fe80::1".parse().unwrap(),
                port: 80,
                flowinfo: 0,
                scope_id: 2
            })
        );
        assert!(parse_address("::1:80").is_err());
        assert!(parse_address("example.com:80").is_err());
        assert_eq!(
            parse_address("server.sock"),
            Ok(SockAddr::Unix {
                path: "server.sock".into(),
                r#abstract: false
            })
        );
        assert_eq!(
            parse_address("@lab"),
            Ok(SockAddr::Unix {
                path: "lab".into(),
                r#abstract: true
            })
        );
    }

    #[test]
    fn wrong_fields_say_what_to_type_instead() {
        let bad = [
            (
                CallForm {
                    address: "127.0.0.1:99999".into(),
                    ..form("connect")
                },
                "0 to 65535",
            ),
            (
                CallForm {
                    address: "localhost".into(),
                    ..form("bind")
                },
                "not an address",
            ),
            (
                CallForm {
                    bufsize: "-1".into(),
                    ..form("recv")
                },
                "buffer size",
            ),
            (
                CallForm {
                    bufsize: "9999999".into(),
                    ..form("recv")
                },
                "buffer size",
            ),
            (
                CallForm {
                    backlog: "five".into(),
                    ..form("listen")
                },
                "backlog",
            ),
            (
                CallForm {
                    endpoint: "1st".into(),
                    ..form("socket")
                },
                "not a socket name",
            ),
            (
                CallForm {
                    endpoint: "s.conn".into(),
                    ..form("socket")
                },
                "not a socket name",
            ),
            (
                CallForm {
                    timeout: "-1".into(),
                    ..form("settimeout")
                },
                "timeout",
            ),
            (
                CallForm {
                    value: "yes".into(),
                    ..form("setsockopt")
                },
                "0 or 1",
            ),
        ];
        for (form, expected) in bad {
            let error = form.build().unwrap_err();
            assert!(error.contains(expected), "{form:?}: {error}");
        }
        // An accepted connection's name is fine for the other calls.
        assert!(
            CallForm {
                endpoint: "s.conn".into(),
                ..form("recv")
            }
            .build()
            .is_ok()
        );
    }

    #[test]
    fn data_reads_python_escapes() {
        assert_eq!(parse_data("a\\nb\\\\c").0, b"a\nb\\c");
        assert_eq!(parse_data("é").0, "é".as_bytes());
    }

    #[test]
    fn the_form_has_every_field_a_call_needs_once() {
        for call in CALLS {
            for field in fields(call) {
                let drawn = FIELDS.iter().filter(|drawn| drawn.name == *field).count();
                assert_eq!(drawn, 1, "{call} needs {field}");
            }
        }
        // Each field reads what it wrote, and writes no other field.
        for field in FIELDS {
            let mut form = CallForm::default();
            (field.set)(&mut form, "true".into());
            for other in FIELDS {
                let expected = if other.name == field.name {
                    "true".to_owned()
                } else {
                    (other.get)(&CallForm::default())
                };
                assert_eq!(
                    (other.get)(&form),
                    expected,
                    "{} then {}",
                    field.name,
                    other.name
                );
            }
        }
    }

    #[test]
    fn every_offered_call_has_its_fields() {
        for call in CALLS {
            let mut form = form(call);
            form.endpoint = "s".into();
            assert!(form.build().is_ok(), "{call}");
            let _ = fields(call);
        }
    }
}
