//! Arbitrary bytes into every decoder that reads what a browser or a file can send: the
//! server's reader of page messages, the page's reader of server messages, and the trace
//! file reader. None may panic; a message read must be written and read back the same (and
//! written by the page's writer, `shared::encode`, exactly as serde writes it), and an
//! endpoint name is checked without panicking however long or odd it is.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::message::{check_endpoint_name, decode_client_message};
use shared::{ClientMessage, ServerMessage, TraceFile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(message) = decode_client_message(text) {
        let again = serde_json::to_string(&message).expect("a message read can be written");
        assert_eq!(decode_client_message(&again).as_ref(), Ok(&message));
        assert_eq!(shared::encode::to_string(&message), again);
        if let ClientMessage::Call { endpoint, call } = &message {
            let _ = check_endpoint_name(endpoint, call.creates_endpoint());
        }
    }
    // The page reads the server's messages with shared::decode, which must agree with serde
    // on whatever both read, and read back what serde writes of it.
    let ours = shared::decode::from_str::<ServerMessage>(text);
    if let Ok(message) = &ours {
        let again = serde_json::to_string(message).expect("a message read can be written");
        assert_eq!(shared::decode::from_str::<ServerMessage>(&again).as_ref(), Ok(message));
    }
    if let (Ok(ours), Ok(serdes)) = (&ours, serde_json::from_str::<ServerMessage>(text)) {
        assert_eq!(ours, &serdes);
    }
    if let Ok(file) = TraceFile::parse(text) {
        assert_eq!(
            file.to_json(),
            serde_json::to_string(&file).expect("a trace read can be written")
        );
    }
});
