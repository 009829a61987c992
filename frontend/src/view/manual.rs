//! The manual mode's form (its fields and checks are `crate::manual`'s, plain Rust) and the
//! sandbox's network.

use std::rc::Rc;

use leptos::prelude::*;
use shared::{ClientMessage, SandboxNetwork};

use crate::app::Connection;
use crate::manual::{self, CallForm};
use crate::model::{Link, Model};

/// One field of the manual form, bound to `form`.
fn form_field(form: RwSignal<CallForm>, field: &'static manual::FormField) -> impl IntoView {
    use leptos::either::EitherOf3;
    let manual::FormField {
        testid,
        label,
        get,
        set,
        ..
    } = *field;
    let input = match field.input {
        manual::FieldInput::Text { placeholder } => EitherOf3::A(view! {
            <input type="text" data-testid=testid placeholder=placeholder
                prop:value=move || form.with(get)
                on:input=move |ev| form.update(|f| set(f, event_target_value(&ev)))/>
        }),
        manual::FieldInput::Choice { options } => EitherOf3::B(view! {
            <select data-testid=testid on:change=move |ev| form.update(|f| set(f, event_target_value(&ev)))>
                {options.iter().map(|&option| view! {
                    <option value=option selected=move || form.with(get) == option>{option}</option>
                }).collect_view()}
            </select>
        }),
        manual::FieldInput::Check => EitherOf3::C(view! {
            <input type="checkbox" data-testid=testid prop:checked=move || form.with(get) == "true"
                on:change=move |ev| form.update(|f| set(f, event_target_checked(&ev).to_string()))/>
        }),
    };
    view! { <label>{label}" "{input}</label> }
}

/// The manual mode: the user's own calls, one at a time, on real sockets in the sandbox.
pub(crate) fn manual_panel(connection: Rc<Connection>, model: RwSignal<Model>) -> impl IntoView {
    let form = RwSignal::new(CallForm::new());
    let problem = RwSignal::new(None::<String>);
    let shows = move |field: &'static str| form.with(|f| manual::fields(&f.call).contains(&field));
    let sandbox_connection = Rc::clone(&connection);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match form.with_untracked(CallForm::build) {
            Err(message) => problem.set(Some(message)),
            Ok((endpoint, call)) => {
                problem.set(None);
                if model.with_untracked(|m| m.link != Link::Connected) {
                    problem.set(Some(
                        "the backend is not connected; wait until it is".to_owned(),
                    ));
                    return;
                }
                connection.send(&ClientMessage::Call { endpoint, call });
            }
        }
    };
    // Where the sandbox's sockets live: choosing starts it afresh there, closing its sockets.
    let choose_network = move |ev: leptos::ev::Event| {
        let network = match event_target_value(&ev).as_str() {
            "machine" => SandboxNetwork::Machine,
            _ => SandboxNetwork::Own,
        };
        if model.with_untracked(|m| m.link != Link::Connected) {
            problem.set(Some(
                "the backend is not connected; wait until it is".to_owned(),
            ));
            return;
        }
        problem.set(None);
        sandbox_connection.send(&ClientMessage::Sandbox { network });
    };
    view! {
        <details class="manual" data-testid="manual">
            <summary>"Your own calls (manual mode)"</summary>
            <p class="hint">"Make any call on your own sockets, in any order, and see what the kernel answers. Name a socket (such as s), create it with socket, then bind, listen, accept, connect… A call that waits, such as accept, goes on while you make the next one."</p>
            <label class="sandbox-network">"Network "
                <select data-testid="sandbox-network" on:change=choose_network>
                    <option value="own" selected>"Socket Lab's own: see every packet"</option>
                    <option value="machine">"this machine's: your own programs (nc, client.py) can reach it, no packets"</option>
                </select>
            </label>
            <form on:submit=submit>
                // One loop over a table, rather than a view per field: each written-out
                // field was its own copy of the view code in the wasm.
                {manual::FIELDS.iter().map(|field| view! {
                    <Show when=move || field.always || shows(field.name)>{form_field(form, field)}</Show>
                }).collect_view()}
                <button type="submit" data-testid="manual-submit">"Call"</button>
            </form>
            <p class="error" data-testid="manual-error">{move || problem.get()}</p>
        </details>
    }
}
