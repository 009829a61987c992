//! [`Decode`] for the types the page reads whose shape `shared-derive` does not derive
//! (tagged enums, addresses, bytes), mirroring their serde attributes: each `impl` reads the
//! same fields, under the same names, as the type's derived `Deserialize` (the tests in
//! `super::tests` check the two agree). The plain structs and unit enums derive `Decode`
//! beside their serde derives.

use super::{Decode, DecodeError, DecodeFlat, Reader, field, one_of, optional, required};
use crate::call::{Call, ReturnValue, Shutdown, SockOption};
use crate::kernel::SocketState;
use crate::message::{RunOutcome, ServerMessage};
use crate::net::{Bytes, Family, SockAddr, SockAddrText, SockType};

impl Decode for Family {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let names = Family::ALL.map(|family| (family.name(), family));
        one_of(reader, &names, "family")
    }
}

impl Decode for SockType {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let names = SockType::ALL.map(|kind| (kind.name(), kind));
        one_of(reader, &names, "socket type")
    }
}

impl Decode for Shutdown {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let names = Shutdown::ALL.map(|how| (how.name(), how));
        one_of(reader, &names, "shutdown")
    }
}

impl Decode for SocketState {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let names = SocketState::ALL.map(|state| (state.name(), state));
        one_of(reader, &names, "state")
    }
}

impl Decode for SockAddr {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let family = reader.tag("family")?;
        let (mut host, mut port, mut flowinfo, mut scope_id, mut path, mut r#abstract) =
            (None, None, None, None, None, None);
        reader.object(|reader, key| match key {
            "host" => field(reader, &mut host),
            "port" => field(reader, &mut port),
            "flowinfo" => field(reader, &mut flowinfo),
            "scope_id" => field(reader, &mut scope_id),
            "path" => field(reader, &mut path),
            "abstract" => field(reader, &mut r#abstract),
            _ => reader.skip(),
        })?;
        let text = match &*family {
            "AF_INET" => SockAddrText::Inet {
                host: required(reader, host, "host")?,
                port: required(reader, port, "port")?,
            },
            "AF_INET6" => SockAddrText::Inet6 {
                host: required(reader, host, "host")?,
                port: required(reader, port, "port")?,
                flowinfo: flowinfo.unwrap_or_default(),
                scope_id: scope_id.unwrap_or_default(),
            },
            "AF_UNIX" => SockAddrText::Unix {
                path: required(reader, path, "path")?,
                r#abstract: r#abstract.unwrap_or_default(),
            },
            other => return Err(reader.error(format!("unknown family `{other}`"))),
        };
        SockAddr::try_from(text).map_err(|message| reader.error(message))
    }
}

impl Decode for Bytes {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut len, mut hex) = (None, None);
        reader.object(|reader, key| match key {
            "len" => field::<usize>(reader, &mut len),
            // Only the hex is read back; `text` is for people (see `Bytes`).
            "hex" => {
                hex = Some(reader.str()?);
                Ok(())
            }
            _ => reader.skip(),
        })?;
        let len = required(reader, len, "len")?;
        let bytes = Bytes::from_hex(&required(reader, hex, "hex")?).map_err(|e| reader.error(e))?;
        if bytes.len() != len {
            return Err(reader.error(format!("len is {len} but hex holds {} bytes", bytes.len())));
        }
        Ok(bytes)
    }
}

impl Decode for SockOption {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut name, mut value) = (None, None);
        reader.object(|reader, key| match key {
            "name" => field::<String>(reader, &mut name),
            "value" => {
                value = Some(reader.defer()?);
                Ok(())
            }
            _ => reader.skip(),
        })?;
        let name = required(reader, name, "name")?;
        let Some(mut value) = value else {
            // As with serde, an option whose value is optional may leave it out.
            return match name.as_str() {
                "SO_LINGER" => Ok(SockOption::Linger(None)),
                _ => Err(reader.error("missing field `value`")),
            };
        };
        let value = &mut value;
        Ok(match name.as_str() {
            "SO_REUSEADDR" => SockOption::ReuseAddr(bool::decode(value)?),
            "SO_LINGER" => SockOption::Linger(Option::decode(value)?),
            "TCP_NODELAY" => SockOption::NoDelay(bool::decode(value)?),
            "SO_RCVBUF" => SockOption::RecvBuffer(u32::decode(value)?),
            "SO_SNDBUF" => SockOption::SendBuffer(u32::decode(value)?),
            other => return Err(reader.error(format!("unknown socket option `{other}`"))),
        })
    }
}

/// The `call` and `args` fields of an event or a paused call, gathered while its object is
/// read: the arguments can only be read once the call's name is known, and may come first.
#[derive(Default)]
pub(crate) struct CallFields<'a> {
    name: Option<String>,
    args: Option<Reader<'a>>,
}

impl<'a> CallFields<'a> {
    /// Reads the field if it is `call` or `args`; says whether it was.
    fn read(&mut self, reader: &mut Reader<'a>, key: &str) -> Result<bool, DecodeError> {
        match key {
            "call" => self.name = Some(String::decode(reader)?),
            "args" => self.args = Some(reader.defer()?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn into_call(self, reader: &Reader<'_>) -> Result<Call, DecodeError> {
        let name = required(reader, self.name, "call")?;
        decode_call(reader, &name, self.args)
    }
}

/// A [`Call`] flattened into an event or a paused call (serde's `tag = "call", content =
/// "args"` under `flatten`).
impl DecodeFlat for Call {
    type Fields<'a> = CallFields<'a>;

    fn read<'a>(
        fields: &mut CallFields<'a>,
        reader: &mut Reader<'a>,
        key: &str,
    ) -> Result<bool, DecodeError> {
        fields.read(reader, key)
    }

    fn finish(fields: CallFields<'_>, reader: &Reader<'_>) -> Result<Self, DecodeError> {
        fields.into_call(reader)
    }
}

/// Reads the arguments of the call named `name`, from `args` if the field was there.
fn decode_call(
    reader: &Reader<'_>,
    name: &str,
    args: Option<Reader<'_>>,
) -> Result<Call, DecodeError> {
    let unit = |call: Call| match args {
        // A call without arguments has no `args`, or `null` ones.
        Some(mut args) => match args.null()? {
            true => Ok(call),
            false => Err(args.error(format!("`{name}` takes no arguments"))),
        },
        None => Ok(call),
    };
    let mut args = match name {
        "gethostname" => return unit(Call::Gethostname),
        "accept" => return unit(Call::Accept),
        "getsockname" => return unit(Call::Getsockname),
        "getpeername" => return unit(Call::Getpeername),
        "close" => return unit(Call::Close),
        _ => args.ok_or_else(|| reader.error("missing field `args`"))?,
    };
    let mut family = None;
    let mut sock_type = None;
    let mut address = None;
    let mut backlog = None;
    let mut data = None;
    let mut bufsize = None;
    let mut how = None;
    let mut option = None;
    let mut flag = None;
    let mut millis = None;
    let mut text = None;
    args.object(|args, key| match key {
        "family" => field(args, &mut family),
        "type" => field(args, &mut sock_type),
        "address" => field(args, &mut address),
        "backlog" => field(args, &mut backlog),
        "data" => field(args, &mut data),
        "bufsize" => field(args, &mut bufsize),
        "how" => field(args, &mut how),
        "option" => field(args, &mut option),
        "flag" => field(args, &mut flag),
        "millis" => optional(args, &mut millis),
        "text" => field(args, &mut text),
        _ => args.skip(),
    })?;
    let args = &args;
    Ok(match name {
        "socket" => Call::Socket {
            family: required(args, family, "family")?,
            sock_type: required(args, sock_type, "type")?,
        },
        "bind" => Call::Bind {
            address: required(args, address, "address")?,
        },
        "listen" => Call::Listen {
            backlog: required(args, backlog, "backlog")?,
        },
        "connect" => Call::Connect {
            address: required(args, address, "address")?,
        },
        "send" => Call::Send {
            data: required(args, data, "data")?,
        },
        "sendall" => Call::Sendall {
            data: required(args, data, "data")?,
        },
        "sendto" => Call::Sendto {
            data: required(args, data, "data")?,
            address: required(args, address, "address")?,
        },
        "recv" => Call::Recv {
            bufsize: required(args, bufsize, "bufsize")?,
        },
        "recvfrom" => Call::Recvfrom {
            bufsize: required(args, bufsize, "bufsize")?,
        },
        "shutdown" => Call::Shutdown {
            how: required(args, how, "how")?,
        },
        "setsockopt" => Call::Setsockopt {
            option: required(args, option, "option")?,
        },
        "setblocking" => Call::Setblocking {
            flag: required(args, flag, "flag")?,
        },
        "settimeout" => Call::Settimeout { millis },
        "other" => Call::Other {
            text: required(args, text, "text")?,
        },
        other => return Err(reader.error(format!("unknown call `{other}`"))),
    })
}

impl Decode for ReturnValue {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let kind = reader.tag("kind")?;
        let (mut name, mut endpoint, mut fd, mut address, mut process) =
            (None, None, None, None, None);
        let (mut count, mut data, mut from, mut truncated_from) = (None, None, None, None);
        reader.object(|reader, key| match key {
            "name" => field(reader, &mut name),
            "endpoint" => field(reader, &mut endpoint),
            "fd" => field(reader, &mut fd),
            "address" => field(reader, &mut address),
            "process" => optional(reader, &mut process),
            "count" => field(reader, &mut count),
            "data" => field(reader, &mut data),
            "from" => optional(reader, &mut from),
            "truncated_from" => optional(reader, &mut truncated_from),
            _ => reader.skip(),
        })?;
        Ok(match &*kind {
            "none" => ReturnValue::None,
            "socket" => ReturnValue::Socket,
            "hostname" => ReturnValue::Hostname {
                name: required(reader, name, "name")?,
            },
            "accepted" => ReturnValue::Accepted {
                endpoint: required(reader, endpoint, "endpoint")?,
                fd: required(reader, fd, "fd")?,
                address: required(reader, address, "address")?,
                process,
            },
            "sent" => ReturnValue::Sent {
                count: required(reader, count, "count")?,
            },
            "received" => ReturnValue::Received {
                data: required(reader, data, "data")?,
                from,
                truncated_from,
            },
            "address" => ReturnValue::Address {
                address: required(reader, address, "address")?,
            },
            other => return Err(reader.error(format!("unknown return value kind `{other}`"))),
        })
    }
}

/// The fields of a [`RunOutcome`], which is an object of its own in a trace file and is
/// flattened into [`ServerMessage::RunFinished`].
#[derive(Default)]
struct OutcomeFields {
    outcome: Option<String>,
    reason: Option<String>,
    message: Option<String>,
}

impl OutcomeFields {
    /// Reads the field if it is one of an outcome's; says whether it was.
    fn read(&mut self, reader: &mut Reader<'_>, key: &str) -> Result<bool, DecodeError> {
        match key {
            "outcome" => field(reader, &mut self.outcome)?,
            "reason" => field(reader, &mut self.reason)?,
            "message" => field(reader, &mut self.message)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn into_outcome(self, reader: &Reader<'_>) -> Result<RunOutcome, DecodeError> {
        Ok(match required(reader, self.outcome, "outcome")?.as_str() {
            "completed" => RunOutcome::Completed,
            "cancelled" => RunOutcome::Cancelled {
                reason: required(reader, self.reason, "reason")?,
            },
            "failed" => RunOutcome::Failed {
                message: required(reader, self.message, "message")?,
            },
            other => return Err(reader.error(format!("unknown outcome `{other}`"))),
        })
    }
}

impl Decode for RunOutcome {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut fields = OutcomeFields::default();
        reader.object(|reader, key| {
            if !fields.read(reader, key)? {
                reader.skip()?;
            }
            Ok(())
        })?;
        fields.into_outcome(reader)
    }
}

impl Decode for ServerMessage {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let kind = reader.tag("type")?;
        let (mut protocol, mut server_version, mut scenarios) = (None, None, None);
        let (mut run, mut scenario, mut programs, mut unix_dir) = (None, None, None, None);
        let (mut events, mut dropped, mut next, mut code) = (None, None, None, None);
        let (mut program, mut packets, mut capture) = (None, None, None);
        let mut outcome = OutcomeFields::default();
        reader.object(|reader, key| match key {
            "protocol" => field(reader, &mut protocol),
            "server_version" => field(reader, &mut server_version),
            "scenarios" => field(reader, &mut scenarios),
            "run" => field(reader, &mut run),
            "scenario" => field(reader, &mut scenario),
            "programs" => field(reader, &mut programs),
            "unix_dir" => optional(reader, &mut unix_dir),
            "events" => field(reader, &mut events),
            "dropped" => field(reader, &mut dropped),
            "next" => field(reader, &mut next),
            "code" => field(reader, &mut code),
            "program" => field(reader, &mut program),
            "packets" => field(reader, &mut packets),
            "capture" => field(reader, &mut capture),
            _ if outcome.read(reader, key)? => Ok(()),
            _ => reader.skip(),
        })?;
        Ok(match &*kind {
            "hello" => ServerMessage::Hello {
                protocol: required(reader, protocol, "protocol")?,
                server_version: required(reader, server_version, "server_version")?,
                scenarios: required(reader, scenarios, "scenarios")?,
            },
            "run_started" => ServerMessage::RunStarted {
                run: required(reader, run, "run")?,
                scenario: required(reader, scenario, "scenario")?,
                programs: required(reader, programs, "programs")?,
                unix_dir,
            },
            "events" => ServerMessage::Events {
                run: required(reader, run, "run")?,
                events: required(reader, events, "events")?,
                dropped: dropped.unwrap_or_default(),
            },
            "paused" => ServerMessage::Paused {
                run: required(reader, run, "run")?,
                next: required(reader, next, "next")?,
            },
            "program" => ServerMessage::Program {
                run: required(reader, run, "run")?,
                program: required(reader, program, "program")?,
            },
            "packets" => ServerMessage::Packets {
                run: required(reader, run, "run")?,
                packets: required(reader, packets, "packets")?,
            },
            "capture" => ServerMessage::Capture {
                run: required(reader, run, "run")?,
                capture: required(reader, capture, "capture")?,
            },
            "run_finished" => ServerMessage::RunFinished {
                run: required(reader, run, "run")?,
                outcome: outcome.into_outcome(reader)?,
            },
            "error" => ServerMessage::Error {
                code: required(reader, code, "code")?,
                message: required(reader, outcome.message, "message")?,
            },
            other => return Err(reader.error(format!("unknown message type `{other}`"))),
        })
    }
}
