//! [`Decode`] for every type the page reads, mirroring the serde attributes on the types:
//! each `impl` reads the same fields, under the same names, as the type's derived
//! `Deserialize` (the tests in `super::tests` check the two agree).

use super::{Decode, DecodeError, Reader, field, one_of, optional, required};
use crate::call::{
    Call, CallError, CallResult, ErrorOrigin, PeerProcess, ReturnValue, Shutdown, SockOption,
};
use crate::event::{Event, Phase};
use crate::kernel::{SocketState, SocketView};
use crate::message::{
    CallTally, Dropped, ErrorCode, NextCall, RoleProgram, RunOutcome, ScenarioInfo, ServerMessage,
};
use crate::net::{Bytes, Family, SockAddr, SockAddrText, SockType};
use crate::trace_file::TraceFile;

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

impl Decode for Phase {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        one_of(
            reader,
            &[("enter", Phase::Enter), ("return", Phase::Return)],
            "phase",
        )
    }
}

impl Decode for SocketState {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let names = SocketState::ALL.map(|state| (state.name(), state));
        one_of(reader, &names, "state")
    }
}

impl Decode for ErrorOrigin {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        one_of(
            reader,
            &[
                ("kernel", ErrorOrigin::Kernel),
                ("python", ErrorOrigin::Python),
                ("lab", ErrorOrigin::Lab),
            ],
            "error origin",
        )
    }
}

impl Decode for ErrorCode {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        use ErrorCode::*;
        one_of(
            reader,
            &[
                ("malformed_message", MalformedMessage),
                ("binary_message", BinaryMessage),
                ("unknown_scenario", UnknownScenario),
                ("no_run_in_progress", NoRunInProgress),
                ("scenario_in_progress", ScenarioInProgress),
                ("invalid_endpoint", InvalidEndpoint),
                ("limit_reached", LimitReached),
                ("nothing_to_resume", NothingToResume),
                ("outside_role_refused", OutsideRoleRefused),
            ],
            "error code",
        )
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
struct CallFields<'a> {
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
        other => return Err(reader.error(format!("unknown call `{other}`"))),
    })
}

impl Decode for PeerProcess {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut pid, mut name) = (None, None);
        reader.object(|reader, key| match key {
            "pid" => field(reader, &mut pid),
            "name" => field(reader, &mut name),
            _ => reader.skip(),
        })?;
        Ok(PeerProcess {
            pid: required(reader, pid, "pid")?,
            name: required(reader, name, "name")?,
        })
    }
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

impl Decode for CallResult {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut value, mut fd, mut local, mut peer, mut peer_process) =
            (None, None, None, None, None);
        reader.object(|reader, key| match key {
            "value" => field(reader, &mut value),
            "fd" => optional(reader, &mut fd),
            "local" => optional(reader, &mut local),
            "peer" => optional(reader, &mut peer),
            "peer_process" => optional(reader, &mut peer_process),
            _ => reader.skip(),
        })?;
        Ok(CallResult {
            value: required(reader, value, "value")?,
            fd,
            local,
            peer,
            peer_process,
        })
    }
}

impl Decode for CallError {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut errno, mut code, mut message, mut origin) = (None, None, None, None);
        reader.object(|reader, key| match key {
            "errno" => field(reader, &mut errno),
            "code" => field(reader, &mut code),
            "message" => field(reader, &mut message),
            "origin" => field(reader, &mut origin),
            _ => reader.skip(),
        })?;
        Ok(CallError {
            errno: required(reader, errno, "errno")?,
            code: required(reader, code, "code")?,
            message: required(reader, message, "message")?,
            origin: origin.unwrap_or_default(),
        })
    }
}

impl Decode for SocketView {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut endpoint, mut state, mut lingering, mut peer_closed) = (None, None, None, None);
        let (mut recv_queue, mut send_queue, mut accept_queue, mut backlog) =
            (None, None, None, None);
        reader.object(|reader, key| match key {
            "endpoint" => field(reader, &mut endpoint),
            "state" => field(reader, &mut state),
            "recv_queue" => optional(reader, &mut recv_queue),
            "send_queue" => optional(reader, &mut send_queue),
            "accept_queue" => optional(reader, &mut accept_queue),
            "backlog" => optional(reader, &mut backlog),
            "lingering" => field(reader, &mut lingering),
            "peer_closed" => field(reader, &mut peer_closed),
            _ => reader.skip(),
        })?;
        Ok(SocketView {
            endpoint: required(reader, endpoint, "endpoint")?,
            state: required(reader, state, "state")?,
            recv_queue,
            send_queue,
            accept_queue,
            backlog,
            lingering: lingering.unwrap_or_default(),
            peer_closed: peer_closed.unwrap_or_default(),
        })
    }
}

impl Decode for Event {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut seq, mut t_us, mut role, mut endpoint, mut line) = (None, None, None, None, None);
        let (mut phase, mut result, mut error, mut kernel) = (None, None, None, None);
        let mut call = CallFields::default();
        reader.object(|reader, key| match key {
            "seq" => field(reader, &mut seq),
            "t_us" => field(reader, &mut t_us),
            "role" => field(reader, &mut role),
            "endpoint" => field(reader, &mut endpoint),
            "line" => optional(reader, &mut line),
            "phase" => field(reader, &mut phase),
            "result" => optional(reader, &mut result),
            "error" => optional(reader, &mut error),
            "kernel" => field(reader, &mut kernel),
            _ if call.read(reader, key)? => Ok(()),
            _ => reader.skip(),
        })?;
        Ok(Event {
            seq: required(reader, seq, "seq")?,
            t_us: required(reader, t_us, "t_us")?,
            role: required(reader, role, "role")?,
            endpoint: required(reader, endpoint, "endpoint")?,
            line,
            call: call.into_call(reader)?,
            phase: required(reader, phase, "phase")?,
            result,
            error,
            kernel: kernel.unwrap_or_default(),
        })
    }
}

impl Decode for ScenarioInfo {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut id, mut title, mut summary, mut outside_roles) = (None, None, None, None);
        reader.object(|reader, key| match key {
            "id" => field(reader, &mut id),
            "title" => field(reader, &mut title),
            "summary" => field(reader, &mut summary),
            "outside_roles" => field(reader, &mut outside_roles),
            _ => reader.skip(),
        })?;
        Ok(ScenarioInfo {
            id: required(reader, id, "id")?,
            title: required(reader, title, "title")?,
            summary: required(reader, summary, "summary")?,
            outside_roles: outside_roles.unwrap_or_default(),
        })
    }
}

impl Decode for RoleProgram {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut role, mut code, mut outside) = (None, None, None);
        reader.object(|reader, key| match key {
            "role" => field(reader, &mut role),
            "code" => field(reader, &mut code),
            "outside" => field(reader, &mut outside),
            _ => reader.skip(),
        })?;
        Ok(RoleProgram {
            role: required(reader, role, "role")?,
            code: required(reader, code, "code")?,
            outside: outside.unwrap_or_default(),
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

impl Decode for NextCall {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut role, mut endpoint, mut line) = (None, None, None);
        let mut call = CallFields::default();
        reader.object(|reader, key| match key {
            "role" => field(reader, &mut role),
            "endpoint" => field(reader, &mut endpoint),
            "line" => optional(reader, &mut line),
            _ if call.read(reader, key)? => Ok(()),
            _ => reader.skip(),
        })?;
        Ok(NextCall {
            role: required(reader, role, "role")?,
            endpoint: required(reader, endpoint, "endpoint")?,
            line,
            call: call.into_call(reader)?,
        })
    }
}

impl Decode for CallTally {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut endpoint, mut call, mut count, mut failed, mut bytes) =
            (None, None, None, None, None);
        reader.object(|reader, key| match key {
            "endpoint" => field(reader, &mut endpoint),
            "call" => field(reader, &mut call),
            "count" => field(reader, &mut count),
            "failed" => field(reader, &mut failed),
            "bytes" => field(reader, &mut bytes),
            _ => reader.skip(),
        })?;
        Ok(CallTally {
            endpoint: required(reader, endpoint, "endpoint")?,
            call: required(reader, call, "call")?,
            count: required(reader, count, "count")?,
            failed: failed.unwrap_or_default(),
            bytes: bytes.unwrap_or_default(),
        })
    }
}

impl Decode for Dropped {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut count, mut first_seq, mut last_seq, mut calls) = (None, None, None, None);
        reader.object(|reader, key| match key {
            "count" => field(reader, &mut count),
            "first_seq" => field(reader, &mut first_seq),
            "last_seq" => field(reader, &mut last_seq),
            "calls" => field(reader, &mut calls),
            _ => reader.skip(),
        })?;
        Ok(Dropped {
            count: required(reader, count, "count")?,
            first_seq: required(reader, first_seq, "first_seq")?,
            last_seq: required(reader, last_seq, "last_seq")?,
            calls: calls.unwrap_or_default(),
        })
    }
}

impl Decode for ServerMessage {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let kind = reader.tag("type")?;
        let (mut protocol, mut server_version, mut scenarios) = (None, None, None);
        let (mut run, mut scenario, mut programs, mut unix_dir) = (None, None, None, None);
        let (mut events, mut dropped, mut next, mut code) = (None, None, None, None);
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

impl Decode for TraceFile {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (mut format, mut protocol, mut scenario) = (None, None, None);
        let (mut programs, mut events, mut outcome) = (None, None, None);
        reader.object(|reader, key| match key {
            "format" => field(reader, &mut format),
            "protocol" => field(reader, &mut protocol),
            "scenario" => field(reader, &mut scenario),
            "programs" => field(reader, &mut programs),
            "events" => field(reader, &mut events),
            "outcome" => optional(reader, &mut outcome),
            _ => reader.skip(),
        })?;
        Ok(TraceFile {
            format: required(reader, format, "format")?,
            protocol: required(reader, protocol, "protocol")?,
            scenario: required(reader, scenario, "scenario")?,
            programs: required(reader, programs, "programs")?,
            events: required(reader, events, "events")?,
            outcome,
        })
    }
}
