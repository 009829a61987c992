//! The log: every event and packet of the run, a row each, filterable by endpoint, in a
//! panel of its own that can be collapsed. Only the rows on screen are drawn.

use leptos::prelude::*;
use shared::Phase;
use shared::describe::{kernel_call_text, outcome_text};

use crate::model::Step;
use crate::perf;
use crate::view::Panel;
use crate::view::scroll::{
    BoxScroll, LOG_ROW_HEIGHT, changes_while_on_screen, keep_in_view, keep_scroll, rows_as_px,
    visible_rows, watch_on_screen,
};

/// The log's panel: its tools and its scrolling table.
pub(crate) fn log(
    panel: Panel,
    filter: RwSignal<Option<String>>,
    newest_first: RwSignal<bool>,
) -> impl IntoView {
    let Panel {
        model,
        position,
        draw_all,
        ..
    } = panel;
    let show_packets = RwSignal::new(true);
    let log_box: NodeRef<leptos::html::Div> = NodeRef::new();
    let log_on_screen = RwSignal::new(true);
    watch_on_screen(log_box, log_on_screen);
    let log_changes = changes_while_on_screen(model, log_on_screen, draw_all);
    let log_scroll = RwSignal::new(BoxScroll {
        top: 0,
        height: 15 * LOG_ROW_HEIGHT,
        width: 0,
        at_end: true,
    });
    // Where the log is scrolled to, unless it is at its end: there, while it follows a live
    // run, where it is scrolled to changes with every frame's new rows, but the rows to show
    // are the last ones all the same; drawing them once is enough, not again when the scroll
    // catches up. Anywhere else, every row scrolled to is drawn.
    let log_anchor = Memo::new(move |_| {
        let scroll = log_scroll.get();
        let (first_row, rows_shown) = scroll.rows(LOG_ROW_HEIGHT);
        ((!scroll.at_end).then_some(first_row), rows_shown)
    });
    let endpoint_ids = move || {
        model.with(|m| {
            m.run
                .as_ref()
                .map(|run| {
                    run.endpoints
                        .iter()
                        .map(|e| e.id.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let log = move || {
        let _span = perf::span("log");
        let (scrolled_to, rows_shown) = log_anchor.get();
        let filter = filter.get();
        let newest_first = newest_first.get();
        let _ = log_changes.get();
        model.with_untracked(|m| {
            let run = m.run.as_ref()?;
            let rows = run.log_rows(filter.as_deref(), newest_first, show_packets.get());
            // Following a live run at its end, the box shows its last rows and nothing above
            // them: those alone are drawn, new at every burst (scrolled up, the box is drawn
            // again, with rows to spare, before it is painted). A short log is drawn whole
            // all the same, so that the page can be searched and printed.
            let following_at_end = scrolled_to.is_none() && run.cursor.is_none() && !newest_first;
            let first_row = match scrolled_to {
                Some(first_row) => first_row,
                None if following_at_end => rows.len().saturating_sub(rows_shown),
                None => log_scroll.get_untracked().rows(LOG_ROW_HEIGHT).0,
            };
            let mut window = visible_rows(
                rows_as_px(first_row) * LOG_ROW_HEIGHT,
                rows_as_px(rows_shown) * LOG_ROW_HEIGHT,
                LOG_ROW_HEIGHT,
                rows.len(),
            );
            if following_at_end && window.len() < rows.len() {
                window.start = window.start.max(first_row);
            }
            let highlight = match run.selected_packet() {
                Some((packet, _)) => Some(Step::Packet(packet)),
                None => run.cursor.and(run.selected()).map(Step::Event),
            };
            let endpoints = std::cell::OnceCell::new();
            let above = rows_as_px(window.start) * LOG_ROW_HEIGHT;
            let below = rows_as_px(rows.len() - window.end) * LOG_ROW_HEIGHT;
            Some(view! {
                <tr class="spacer" style=format!("height: {above}px")></tr>
                {window.map(|row| {
                    let index = match rows.step(row) {
                        Step::Event(index) => index,
                        Step::Packet(index) => {
                            let packet = &run.packets[index];
                            let endpoints = endpoints.get_or_init(|| shared::cause::Endpoints::of(&run.events));
                            let cause = run.packet_cause(packet, endpoints);
                            let route = cause.route();
                            let class = if highlight == Some(Step::Packet(index)) { "packet selected" } else { "packet" };
                            let (text, title) = (cause.text.clone(), cause.text);
                            return view! {
                                <tr class=class data-testid="packet-row" data-step=format!("p{index}")>
                                    <td>{format!("p{}", packet.seq)}</td>
                                    <td>{crate::model::millis_text(packet.t_us)}</td>
                                    <td>{route}</td>
                                    <td>"packet"</td>
                                    <td><code>{packet.summary()}</code></td>
                                    <td></td>
                                    <td title=title>{text}</td>
                                </tr>
                            }.into_any();
                        }
                    };
                    let event = &run.events[index];
                    let result = if event.phase == Phase::Return { outcome_text(event) } else { String::new() };
                    let meaning = run.explain(event);
                    let (result_title, meaning_title) = (result.clone(), meaning.clone());
                    let mut class = if event.error.is_some() { "failed".to_owned() } else { String::new() };
                    if Some(Step::Event(index)) == highlight {
                        class.push_str(" selected");
                    }
                    view! {
                        <tr class=class data-step=index>
                            <td>{event.seq}</td>
                            <td>{crate::model::millis_text(event.t_us)}</td>
                            <td>{event.endpoint.clone()}</td>
                            <td>{if event.phase == Phase::Enter { "enter" } else { "return" }}</td>
                            <td>{python_call(event)}<code>{kernel_call_text(event)}</code></td>
                            <td title=result_title><code>{result}</code></td>
                            <td title=meaning_title>{meaning}</td>
                        </tr>
                    }.into_any()
                }).collect_view()}
                <tr class="spacer" style=format!("height: {below}px")></tr>
            })
        })
    };
    let log_to_selected = move |index: usize, following: bool| {
        let Some(element) = log_box.get_untracked() else {
            return;
        };
        let row = model.with_untracked(|m| {
            m.run.as_ref().and_then(|run| {
                let step = match run.selected_packet() {
                    Some((packet, _)) => Step::Packet(packet),
                    None => Step::Event(index),
                };
                run.log_rows(
                    filter.get_untracked().as_deref(),
                    newest_first.get_untracked(),
                    show_packets.get_untracked(),
                )
                .row_of(step)
            })
        });
        if let Some(row) = row {
            let to_end = following && !newest_first.get_untracked();
            keep_in_view(
                &element,
                rows_as_px(row) * LOG_ROW_HEIGHT,
                LOG_ROW_HEIGHT,
                0,
                to_end,
            );
        }
    };
    // A log that comes back on screen (scrolled to, or its panel opened) is drawn anew first,
    // and scrolled in the next frame, once its new rows are there to scroll to; so is one
    // that follows a live run.
    Effect::new(move |was_on_screen: Option<bool>| {
        let _span = perf::span("keep-in-view");
        let (selected, _, following) = position.get();
        let on_screen = log_on_screen.get() || draw_all.get();
        if let Some(index) = selected {
            // Following the newest event, the box is scrolled to its end once this change's
            // rows are drawn: scrolled before, the rows drawn after leave it short of its
            // end, and a box short of its end stops following.
            if on_screen && (was_on_screen == Some(false) || following) {
                request_animation_frame(move || log_to_selected(index, following));
            } else if on_screen {
                log_to_selected(index, following);
            }
        }
        on_screen
    });
    // Where the page is one screen tall (a laptop), the log starts closed, so that the
    // workbench has the screen; on a taller one (a projector), and on a narrow page that
    // scrolls anyway, it starts open. Either way its summary line opens and closes it.
    let open_at_first = {
        let size = |value: Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue>| {
            value.ok().and_then(|value| value.as_f64()).unwrap_or(0.0)
        };
        let window = window();
        size(window.inner_width()) < 1200.0 || size(window.inner_height()) >= 1000.0
    };
    let count = move || {
        model.with(|m| {
            m.run.as_ref().map(|run| {
                let packets = run.packets.len();
                if packets == 0 {
                    format!("{} events", run.events.len())
                } else {
                    format!("{} events, {packets} packets", run.events.len())
                }
            })
        })
    };
    // One handler for every row, which names its step (`data-step`: an event's index, or
    // `p` and a packet's), rather than a handler of each row's own, made and dropped with the
    // row at every burst of a live run. (The page's code is 89 B smaller; a burst's time did
    // not change beyond the machine's spread.)
    let step_to_clicked_row = move |ev: leptos::ev::MouseEvent| {
        use wasm_bindgen::JsCast;
        let step = ev
            .target()
            .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
            .and_then(|element| element.closest("tr[data-step]").ok().flatten())
            .and_then(|row| row.get_attribute("data-step"));
        let Some(step) = step else {
            return;
        };
        model.update(|m| {
            m.with_run(|run| match step.strip_prefix('p') {
                Some(packet) => {
                    if let Ok(packet) = packet.parse() {
                        run.seek_packet(packet);
                    }
                }
                None => {
                    if let Ok(index) = step.parse() {
                        run.seek(index);
                    }
                }
            });
        });
    };
    view! {
        <details class="log" open=open_at_first data-testid="log-panel">
            <summary><h2>"Events"</h2> <span class="count">{count}</span></summary>
            <div class="log-tools">
                <label>"endpoint "
                    <select data-testid="log-filter" on:change=move |ev| {
                        let value = event_target_value(&ev);
                        filter.set((!value.is_empty()).then_some(value));
                    }>
                        <option value="" selected=move || filter.with(Option::is_none)>"all"</option>
                        {move || endpoint_ids().into_iter().map(|id| {
                            let chosen = filter.with_untracked(|f| f.as_deref() == Some(id.as_str()));
                            view! { <option value=id.clone() selected=chosen>{id.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label title="List the run's packets among its calls">
                    <input type="checkbox" data-testid="log-packets" prop:checked=move || show_packets.get()
                        on:change=move |ev| show_packets.set(event_target_checked(&ev))/>" packets"
                </label>
                <button data-testid="log-sort" on:click=move |_| newest_first.update(|newest| *newest = !*newest)>
                    {move || if newest_first.get() { "newest first ↓" } else { "oldest first ↑" }}
                </button>
            </div>
            <div class="log-box" tabindex="0" role="region" aria-label="The events and packets" node_ref=log_box on:scroll=keep_scroll(log_box, log_scroll)>
                <table data-testid="event-log">
                    <thead><tr><th>"seq"</th><th>"ms"</th><th>"endpoint"</th><th>"phase"</th><th>"call"</th><th>"result"</th><th>"what it means"</th></tr></thead>
                    <tbody on:click=step_to_clicked_row>{log}</tbody>
                </table>
            </div>
        </details>
    }
}

/// Which Python call made a watched program's system call, where it is not the same name
/// (`sendall() → sendto(...)`), written first so that a narrow column still shows it.
fn python_call(event: &shared::Event) -> Option<impl IntoView + use<>> {
    let watched = event.watched.as_ref()?;
    let python = watched.python.as_ref()?;
    (python != &watched.syscall).then(|| {
        view! { <span class="python-call" title="the Python call that made this system call">{format!("{python}() → ")}</span> }
    })
}
