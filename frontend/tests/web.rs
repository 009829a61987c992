//! Component tests: the run panel mounted in a real browser, checked through its DOM.
//!
//! Run by `scripts/test.sh` with `wasm-bindgen-test-runner` and headless Chromium
//! (`cargo test -p frontend --target wasm32-unknown-unknown`).

#![cfg(target_arch = "wasm32")]

use std::net::Ipv4Addr;

use frontend::model::Model;
use leptos::prelude::*;
use shared::{
    Call, CallResult, Event, Phase, ReturnValue, RoleProgram, ScenarioInfo, ServerMessage, SockAddr,
};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const SERVER: SockAddr = SockAddr::Inet {
    host: Ipv4Addr::new(127, 64, 0, 1),
    port: 12345,
};

/// A server's socket, bind and listen: six events on lines 3, 4 and 5 of its program.
fn listening_server() -> Vec<Event> {
    let calls = [
        (
            3,
            Call::Socket {
                family: shared::Family::Inet,
                sock_type: shared::SockType::Stream,
            },
            ReturnValue::Socket,
        ),
        (4, Call::Bind { address: SERVER }, ReturnValue::None),
        (5, Call::Listen { backlog: 5 }, ReturnValue::None),
    ];
    let mut events = Vec::new();
    for (line, call, value) in calls {
        for phase in [Phase::Enter, Phase::Return] {
            let seq = events.len() as u64;
            events.push(Event {
                seq,
                t_us: seq * 10,
                role: "server".into(),
                endpoint: "server.s".into(),
                line: Some(line),
                call: call.clone(),
                phase,
                result: (phase == Phase::Return).then(|| CallResult {
                    value: value.clone(),
                    fd: Some(3),
                    local: Some(SERVER),
                    peer: None,
                    peer_process: None,
                }),
                error: None,
                kernel: Vec::new(),
                watched: None,
            });
        }
    }
    events
}

fn model() -> Model {
    let mut model = Model::default();
    model.apply(ServerMessage::RunStarted {
        run: 1,
        scenario: ScenarioInfo {
            id: "listener".into(),
            title: "A listener".into(),
            summary: "socket, bind, listen".into(),
            outside_roles: vec![],
        },
        programs: vec![RoleProgram {
            role: "server".into(),
            code:
                "import socket\n\ns = socket.socket()\ns.bind(('127.64.0.1', 12345))\ns.listen(5)\n"
                    .into(),
            outside: false,
            file: None,
        }],
        unix_dir: None,
    });
    model.apply(ServerMessage::Events {
        run: 1,
        events: listening_server(),
        dropped: Vec::new(),
    });
    model
}

fn mount(model: RwSignal<Model>) -> web_sys::HtmlElement {
    let document = window().document().unwrap();
    let parent: web_sys::HtmlElement = document.create_element("div").unwrap().unchecked_into();
    document.body().unwrap().append_child(&parent).unwrap();
    frontend::app::mount_run_panel(parent.clone(), model);
    parent
}

fn text(parent: &web_sys::HtmlElement, selector: &str) -> String {
    parent
        .query_selector(selector)
        .unwrap()
        .unwrap_or_else(|| panic!("nothing matches {selector}"))
        .text_content()
        .unwrap_or_default()
}

fn count(parent: &web_sys::HtmlElement, selector: &str) -> u32 {
    parent.query_selector_all(selector).unwrap().length()
}

#[wasm_bindgen_test]
async fn the_panel_draws_the_newest_event_and_its_line() {
    let model = RwSignal::new(model());
    let panel = mount(model);
    leptos::task::tick().await;
    assert_eq!(text(&panel, "[data-testid='step-label']"), "event 6 of 6");
    assert!(
        text(
            &panel,
            "[data-testid='code-server'] [data-testid='current-line']"
        )
        .contains("s.listen(5)")
    );
    // Three calls, three bars; the card shows the kernel's address.
    assert_eq!(count(&panel, "[data-testid='diagram'] rect.bar"), 3);
    assert!(text(&panel, "[data-testid='endpoint-server.s']").contains("('127.64.0.1', 12345)"));
}

#[wasm_bindgen_test]
async fn stepping_back_redraws_the_code_the_diagram_and_the_card() {
    let model = RwSignal::new(model());
    let panel = mount(model);
    leptos::task::tick().await;
    model.update(|m| m.with_run(|run| run.seek(2)));
    leptos::task::tick().await;
    assert_eq!(text(&panel, "[data-testid='step-label']"), "event 3 of 6");
    assert!(
        text(
            &panel,
            "[data-testid='code-server'] [data-testid='current-line']"
        )
        .contains("s.bind(")
    );
    // At the bind's enter only two calls have started, and bind is still in the kernel.
    assert_eq!(count(&panel, "[data-testid='diagram'] rect.bar"), 2);
    assert_eq!(count(&panel, "[data-testid='diagram'] rect.bar.waiting"), 1);
    assert!(text(&panel, "[data-testid='endpoint-server.s']").contains("no answer yet"));
}
