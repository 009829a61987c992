//! Stepping through a run, replaying it, and saving it: the bar above the workbench.

use leptos::prelude::*;

use crate::app::{REPLAY_SPEEDS, Replay};
use crate::files::{download, download_bytes, export_svg};
use crate::model::RunView;
use crate::view::Panel;

/// The controls: first, back, replay, forward, newest, the timeline, the speed, Save trace,
/// Save packets, Export SVG, and the diagram's switches.
pub(crate) fn controls(panel: Panel, replay: Replay) -> impl IntoView {
    let Panel {
        model,
        packet_step,
        draw_all,
        diagram_on_screen,
        zoomed_in,
        show_hex,
        ..
    } = panel;
    let selected = move || panel.selected();
    let total = move || panel.total();
    let following = move || panel.following();
    let step_label = move || match (packet_step.get(), selected()) {
        ((Some(packet), packets, _), _) => format!("packet {} of {packets}", packet + 1),
        (_, Some(index)) => format!("event {} of {}", index + 1, total()),
        (_, None) => "no events yet".to_owned(),
    };
    let save_packets = move |_| {
        if let Some((name, file)) = model.with_untracked(|m| {
            m.run.as_ref().map(|run| {
                let endpoints = shared::cause::Endpoints::of(&run.events);
                let capture = run.capture.clone().unwrap_or_default();
                (
                    format!("socket-lab-{}.pcapng", run.scenario.id),
                    shared::pcapng::write(&capture, &run.packets, |packet| {
                        Some(run.packet_cause(packet, &endpoints).text)
                    }),
                )
            })
        }) {
            download_bytes(&name, &file, "application/x-pcapng");
        }
    };
    let save_trace = move |_| {
        if let Some((name, json)) = model.with_untracked(|m| {
            m.run.as_ref().map(|run| {
                (
                    format!("socket-lab-{}.json", run.scenario.id),
                    run.to_file().to_json(),
                )
            })
        }) {
            download(&name, &json, "application/json");
        }
    };
    let export = move |_| {
        let id = model.with_untracked(|m| {
            m.run
                .as_ref()
                .map(|run| run.scenario.id.clone())
                .unwrap_or_default()
        });
        let file_name = format!("socket-lab-{id}.svg");
        if diagram_on_screen.get_untracked() {
            export_svg(&file_name);
        } else {
            // Scrolled away, the diagram may be behind the run: drawn first, as it is now.
            draw_all.set(true);
            request_animation_frame(move || {
                export_svg(&file_name);
                draw_all.set(false);
            });
        }
    };
    view! {
        <section class="controls" aria-label="Step through the events">
            <button data-testid="step-first" title="First event (Home)" disabled=move || selected().is_none_or(|i| i == 0)
                on:click=move |_| model.update(|m| m.with_run(|run| run.seek(0)))>"◀◀ first"</button>
            <button data-testid="step-back" title="Step back (←)" disabled=move || selected().is_none_or(|i| i == 0)
                on:click=move |_| model.update(|m| m.with_run(|run| run.step(-1)))>"◀ step"</button>
            <button data-testid="replay" title="Replay or pause (space)" disabled=move || total() == 0
                on:click=move |_| replay.toggle(model)>
                {move || if replay.playing.get() { "■ pause" } else { "▷ replay" }}
            </button>
            <button data-testid="step-forward" title="Step forward (→)" disabled=move || selected().is_none() || packet_step.get().2
                on:click=move |_| model.update(|m| m.with_run(|run| run.step(1)))>"step ▶"</button>
            <button data-testid="follow" title="Newest event (End)" disabled=following
                on:click=move |_| model.update(|m| m.with_run(RunView::follow))>"newest ▶▶"</button>
            <input type="range" data-testid="timeline" aria-label="Timeline" min="0"
                max=move || total().saturating_sub(1).to_string() prop:value=move || selected().unwrap_or(0).to_string()
                on:input=move |ev| {
                    if let Ok(index) = event_target_value(&ev).parse::<usize>() {
                        model.update(|m| m.with_run(|run| run.seek(index)));
                    }
                }/>
            <span data-testid="step-label">{step_label}</span>
            <label>"speed "
                <select data-testid="speed" on:change=move |ev| {
                    let value = event_target_value(&ev);
                    if let Some(&(_, delay_ms, _)) = REPLAY_SPEEDS.iter().find(|(speed, ..)| *speed == value) {
                        replay.delay_ms.set(delay_ms);
                    }
                }>
                    {REPLAY_SPEEDS.iter().map(|&(speed, delay_ms, label)| view! {
                        <option value=speed selected=replay.delay_ms.get_untracked() == delay_ms>{label}</option>
                    }).collect_view()}
                </select>
            </label>
            // Before the first call there is nothing to save or export.
            <button data-testid="save-trace" on:click=save_trace title="Save the run as a trace file" disabled=move || total() == 0>"Save trace"</button>
            <button data-testid="save-packets" on:click=save_packets title="Save the run's packets as pcapng, for Wireshark" disabled=move || packet_step.get().1 == 0>"Save packets"</button>
            <button data-testid="export-svg" on:click=export title="Save the diagram as SVG" disabled=move || total() == 0>"Export SVG"</button>
            <label title="Draw every call, instead of folding long stretches of sends and receives into one row">
                <input type="checkbox" data-testid="zoom-in" prop:checked=move || zoomed_in.get()
                    on:change=move |ev| zoomed_in.set(event_target_checked(&ev))/>" every call"
            </label>
            <label title="Label the messages with their bytes in hexadecimal">
                <input type="checkbox" data-testid="show-hex" prop:checked=move || show_hex.get()
                    on:change=move |ev| show_hex.set(event_target_checked(&ev))/>" hex"
            </label>
        </section>
    }
}
