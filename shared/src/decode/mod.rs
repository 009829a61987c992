//! Reading the messages the page receives, without serde's derived deserialisers.
//!
//! The backend writes every message with serde, and reads the page's messages with serde.
//! The page reads the backend's messages and trace files with this module instead, for two
//! reasons measured in issue 7 (PERFORMANCE.md): serde implements the protocol's internally
//! tagged and flattened enums by buffering each value in a generic form first, which made
//! its deserialisers nearly a third of the page's wasm, and made opening a trace of 10,000
//! events slower than drawing it. This decoder reads each message in one pass over the text,
//! borrowing strings where it can.
//!
//! It reads exactly the JSON that serde writes for these types (the tests check that every
//! message and every scenario's trace decodes to the same value both ways) and, like serde,
//! ignores fields it does not know, takes an absent optional field as `None`, and refuses a
//! missing required field or a value of the wrong type with an error that says where.

mod protocol;
mod reader;

pub use reader::{DecodeError, Reader};

/// A type read from JSON by a [`Reader`].
pub trait Decode: Sized {
    /// Reads one value of the type.
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Reads a whole text as one `T`.
pub fn from_str<T: Decode>(text: &str) -> Result<T, DecodeError> {
    let mut reader = Reader::new(text);
    let value = T::decode(&mut reader)?;
    reader.finish()?;
    Ok(value)
}

/// Checks a type whose values are named strings (`SocketState`, `Family`, ...) against its
/// list of every value: `position` is an exhaustive match, so a new value does not compile in
/// the caller's test until it has its place in the list, and each value is written by serde
/// as its name and read back by the decoder, which finds names through the list.
#[cfg(test)]
pub(crate) fn assert_every_value_listed_once<T>(
    all: &[T],
    position: fn(T) -> usize,
    name: fn(T) -> &'static str,
) where
    T: Decode + serde::Serialize + Copy + PartialEq + std::fmt::Debug,
{
    for &value in all {
        assert_eq!(all[position(value)], value);
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, format!("\"{}\"", name(value)));
        assert_eq!(from_str::<T>(&json), Ok(value));
    }
}

impl Decode for String {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.str().map(std::borrow::Cow::into_owned)
    }
}

impl Decode for bool {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.bool()
    }
}

/// Integers of every width the protocol uses, refused when out of the type's range.
macro_rules! decode_integers {
    ($($int:ty),*) => {$(
        impl Decode for $int {
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let value = reader.integer()?;
                <$int>::try_from(value).map_err(|_| {
                    // Written from its sign and its magnitude, which `integer` keeps within
                    // a u64: formatting an i128 would add 1.5 KB to the page for one message.
                    let sign = if value < 0 { "-" } else { "" };
                    let magnitude = value.unsigned_abs() as u64;
                    reader.error(format!(
                        "{sign}{magnitude} is out of range for {}",
                        stringify!($int)
                    ))
                })
            }
        }
    )*};
}
decode_integers!(u16, u32, u64, i32, usize);

impl<T: Decode> Decode for Option<T> {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if reader.null()? {
            return Ok(None);
        }
        T::decode(reader).map(Some)
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.array(decode_item::<T>)
    }
}

/// Reads one item of an array, kept out of line: with each item's decoding inlined into its
/// array's loop the page's wasm was 0.3 KB larger, and opening a trace no faster (measured in
/// the page, 2026-12-07).
#[inline(never)]
fn decode_item<T: Decode>(reader: &mut Reader<'_>) -> Result<T, DecodeError> {
    T::decode(reader)
}

/// A type whose fields are read inline, into the object of the type that holds it (serde's
/// `flatten`): the derived `Decode` of the holder offers it every key it does not know, and
/// asks it for the value once the object is read.
pub(crate) trait DecodeFlat: Sized {
    /// What it gathers while the object is read.
    type Fields<'a>: Default;
    /// Reads the field if it is one of its own; says whether it was.
    fn read<'a>(
        fields: &mut Self::Fields<'a>,
        reader: &mut Reader<'a>,
        key: &str,
    ) -> Result<bool, DecodeError>;
    /// The value, from what was gathered.
    fn finish(fields: Self::Fields<'_>, reader: &Reader<'_>) -> Result<Self, DecodeError>;
}

/// Reads a field's value into its slot; a field that comes twice keeps its last value.
pub(crate) fn field<T: Decode>(
    reader: &mut Reader<'_>,
    slot: &mut Option<T>,
) -> Result<(), DecodeError> {
    *slot = Some(T::decode(reader)?);
    Ok(())
}

/// Reads an optional field's value into its slot: `null` leaves it empty.
pub(crate) fn optional<T: Decode>(
    reader: &mut Reader<'_>,
    slot: &mut Option<T>,
) -> Result<(), DecodeError> {
    *slot = Option::<T>::decode(reader)?;
    Ok(())
}

/// The value of a required field, or an error naming it.
pub(crate) fn required<T>(
    reader: &Reader<'_>,
    slot: Option<T>,
    name: &str,
) -> Result<T, DecodeError> {
    slot.ok_or_else(|| reader.error(format!("missing field `{name}`")))
}

/// Reads a string that must be one of `names`, giving the value paired with it.
pub(crate) fn one_of<T: Copy>(
    reader: &mut Reader<'_>,
    names: &[(&str, T)],
    what: &str,
) -> Result<T, DecodeError> {
    let name = reader.str()?;
    names
        .iter()
        .find(|(candidate, _)| *candidate == name)
        .map(|&(_, value)| value)
        .ok_or_else(|| reader.error(format!("unknown {what} `{name}`")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::tests::every_server_message;
    use crate::{Event, ServerMessage, TraceFile};

    /// Decodes `json` with this module and with serde, which must agree.
    fn both_ways<T>(json: &str) -> (Result<T, DecodeError>, Result<T, serde_json::Error>)
    where
        T: Decode + serde::de::DeserializeOwned,
    {
        (from_str::<T>(json), serde_json::from_str::<T>(json))
    }

    #[test]
    fn every_server_message_decodes_as_serde_wrote_it() {
        for message in every_server_message() {
            let json = serde_json::to_string(&message).unwrap();
            assert_eq!(
                from_str::<ServerMessage>(&json),
                Ok(message.clone()),
                "{json}"
            );
            let pretty = serde_json::to_string_pretty(&message).unwrap();
            assert_eq!(from_str::<ServerMessage>(&pretty), Ok(message), "{pretty}");
        }
    }

    #[test]
    fn fields_may_come_in_any_order() {
        // serde writes a call's name before its arguments and a message's type first; a
        // person editing a trace file need not.
        let event = r#"{"args": {"backlog": 5}, "phase": "enter", "call": "listen",
            "endpoint": "server.s", "role": "server", "t_us": 9, "seq": 1, "extra": [1, {}]}"#;
        let (ours, serdes) = both_ways::<Event>(event);
        assert_eq!(ours.unwrap(), serdes.unwrap());
        let finished =
            r#"{"reason": "stopped", "run": 4, "outcome": "cancelled", "type": "run_finished"}"#;
        let (ours, serdes) = both_ways::<ServerMessage>(finished);
        assert_eq!(ours.unwrap(), serdes.unwrap());
    }

    #[test]
    fn what_serde_refuses_is_refused_with_a_reason() {
        let event = |fields: &str| {
            format!(r#"{{"seq": 1, "t_us": 2, "role": "r", "endpoint": "r.s", {fields}}}"#)
        };
        for (bad, reason) in [
            (event(r#""call": "close", "phase": "enter"}"#), "trailing"),
            (event(r#""phase": "enter""#), "missing field `call`"),
            (
                event(r#""call": "listen", "phase": "enter""#),
                "missing field `args`",
            ),
            (
                event(r#""call": "listen", "args": {}, "phase": "enter""#),
                "`backlog`",
            ),
            (
                event(r#""call": "fly", "args": {}, "phase": "enter""#),
                "unknown call",
            ),
            (
                event(r#""call": "close", "args": 1, "phase": "enter""#),
                "no arguments",
            ),
            // serde reads `-0` as the float -0.0, which no integer field takes.
            (
                event(r#""call": "listen", "args": {"backlog": -0}, "phase": "enter""#),
                "whole number",
            ),
            (
                event(r#""call": "close", "phase": "left""#),
                "unknown phase",
            ),
            (
                event(r#""call": "close", "phase": "enter", "seq": -1"#),
                "-1 is out of range for u64",
            ),
            (
                event(
                    r#""call": "listen", "args": {"backlog": 18446744073709551615}, "phase": "enter""#,
                ),
                "18446744073709551615 is out of range for i32",
            ),
            (
                event(r#""call": "recv", "args": {"bufsize": 1.5}, "phase": "enter""#),
                "whole number",
            ),
            (
                event(
                    r#""call": "send", "args": {"data": {"len": 3, "hex": "0a"}}, "phase": "enter""#,
                ),
                "len is 3",
            ),
            (
                event(
                    r#""call": "bind", "args": {"address": {"family": "AF_INET", "host": "300.1.1.1", "port": 1}}, "phase": "enter""#,
                ),
                "300",
            ),
            (
                event(
                    r#""call": "bind", "args": {"address": {"family": "AF_IPX", "port": 1}}, "phase": "enter""#,
                ),
                "unknown family",
            ),
            (
                r#"{"type": "hello", "protocol": 5}"#.to_owned(),
                "`server_version`",
            ),
            (r#"{"type": "wave"}"#.to_owned(), "unknown message type"),
            (r#"{"run": 1}"#.to_owned(), "missing field `type`"),
            (r#"[]"#.to_owned(), "expected an object"),
            (String::new(), "end of text"),
        ] {
            let (ours, serdes) = if bad.starts_with(r#"{"seq""#) {
                let (ours, serdes) = both_ways::<Event>(&bad);
                (ours.map(drop), serdes.map(drop))
            } else {
                let (ours, serdes) = both_ways::<ServerMessage>(&bad);
                (ours.map(drop), serdes.map(drop))
            };
            assert!(serdes.is_err(), "serde read {bad}");
            let error = ours.expect_err(&bad).to_string();
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }

    #[test]
    fn a_trace_file_decodes_as_serde_wrote_it() {
        let ServerMessage::Events { events, .. } = every_server_message()
            .into_iter()
            .find(|message| matches!(message, ServerMessage::Events { .. }))
            .unwrap()
        else {
            unreachable!()
        };
        let trace = TraceFile {
            format: crate::TRACE_FORMAT.into(),
            protocol: crate::PROTOCOL_VERSION,
            scenario: crate::ScenarioInfo {
                id: "sandbox".into(),
                title: "Sandbox".into(),
                summary: String::new(),
                outside_roles: vec!["client".into()],
            },
            programs: vec![],
            events,
            outcome: Some(crate::RunOutcome::Completed),
            capture: None,
            packets: crate::packet::examples(),
        };
        let json = serde_json::to_string(&trace).unwrap();
        assert_eq!(from_str::<TraceFile>(&json), Ok(trace));
    }

    proptest::proptest! {
        // Most edits break the JSON for both decoders; enough cases that many do not.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Any edit of a real message: the decoder never panics, and reads exactly what
        /// serde reads. (serde refuses a field given twice, where this decoder keeps the last
        /// one, so the edits here never duplicate a key.)
        #[test]
        fn edited_messages_decode_as_serde_decodes_them(
            which in 0..8usize,
            edits in proptest::collection::vec((0.0..1.0f64, 0..4usize, "[\\]\\[{}\",:0-9a-z. -]{0,3}"), 1..3),
        ) {
            let messages = every_server_message();
            let mut json = serde_json::to_string(&messages[which % messages.len()]).unwrap();
            for (at, cut, insert) in edits {
                let mut start = (at * json.len() as f64) as usize;
                while !json.is_char_boundary(start) {
                    start -= 1;
                }
                let mut end = (start + cut).min(json.len());
                while !json.is_char_boundary(end) {
                    end += 1;
                }
                json.replace_range(start..end, &insert);
            }
            let ours = from_str::<ServerMessage>(&json);
            let serdes = serde_json::from_str::<ServerMessage>(&json);
            match (&ours, &serdes) {
                (Ok(ours), Ok(serdes)) => proptest::prop_assert_eq!(ours, serdes),
                (Err(_), Err(_)) => {}
                _ => proptest::prop_assert!(
                    false,
                    "{json}\nours: {ours:?}\nserde: {serdes:?}"
                ),
            }
        }
    }
}
