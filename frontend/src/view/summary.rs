//! The run's title and status, and the notices above the workbench: what the student's own
//! program is to do, events not sent whole, the explanation of the step shown, and what the
//! capture got.

use leptos::prelude::*;
use shared::describe::call_text;

use crate::model::{RunView, Source};
use crate::view::Panel;

/// The run's title, its status and what it shows.
pub(crate) fn run_title(panel: Panel) -> impl IntoView {
    let model = panel.model;
    let read = move |part: fn(&RunView) -> String| {
        model.with(|m| m.run.as_ref().map(part).unwrap_or_default())
    };
    view! {
        <section class="summary">
            <h2>{move || read(|run| run.scenario.title.clone())} " " <small data-testid="run-status">{move || read(status_text)}</small></h2>
            <p title=move || read(|run| run.scenario.summary.clone())>{move || read(|run| run.scenario.summary.clone())}</p>
        </section>
    }
}

/// The notices between the controls and the workbench.
pub(crate) fn notices(panel: Panel) -> impl IntoView {
    let model = panel.model;
    let explanation = move || {
        model.with(|m| {
            let run = m.run.as_ref()?;
            if let Some(next) = run.paused.as_ref().filter(|_| run.cursor.is_none()) {
                return Some(format!(
                    "Next, {} calls {} (line {}). What will the kernel answer? Press Next call (n) to see.",
                    next.endpoint,
                    call_text(&next.call),
                    next.line.map_or_else(|| "?".to_owned(), |line| line.to_string())
                ));
            }
            // A run waiting for the student's program, or just started, has no call yet: the
            // line says what will come there rather than stand empty.
            if let Some((_, packet)) = run.selected_packet() {
                let cause = run.packet_cause(packet, &shared::cause::Endpoints::of(&run.events));
                // The reason is written to follow a packet's line in the log; here it starts a
                // sentence.
                let mut reason = cause.text.chars();
                let reason = reason
                    .next()
                    .map(|first| first.to_uppercase().chain(reason).collect::<String>())
                    .unwrap_or_default();
                return Some(format!(
                    "Packet {}: {}. {reason}",
                    cause.route(),
                    packet.summary()
                ));
            }
            let Some(selected) = run.selected() else {
                return Some("No calls yet: each call is explained here as it happens.".to_owned());
            };
            let event = &run.events[selected];
            Some(format!("{}: {}", event.endpoint, run.explain(event)))
        })
    };
    view! {
        {move || model.with(|m| {
            let run = m.run.as_ref()?;
            let theirs = run.programs.iter().find(|program| program.outside)?;
            if run.outcome.is_some() {
                return None;
            }
            let (role, other) = if theirs.role == "client" { ("client", "server") } else { ("server", "client") };
            // Once their program has connected, the line says so in place (the page does not
            // jump under the student's eyes).
            let text = if run.has_connected() {
                format!("Your {role} has connected. Socket Lab plays the {other} and shows every call it makes.")
            } else {
                format!("Waiting for your {role}: run {role}.py below (it uses host '127.0.0.1' and the port written in it). Socket Lab plays the {other} and shows every call it makes.")
            };
            Some(view! {
                <p class="outside-wait" data-testid="outside-instructions">{text}</p>
            })
        })}
        {move || model.with(|m| {
            let run = m.run.as_ref()?;
            let dropped = run.dropped_count();
            (dropped > 0).then(|| {
                let calls = run.dropped_calls().iter().map(|tally| {
                    let mut text = format!("{} {} ×{}", tally.endpoint, tally.call, tally.count);
                    if tally.bytes > 0 {
                        text.push_str(&format!(", {} bytes", tally.bytes));
                    }
                    if tally.failed > 0 {
                        text.push_str(&format!(", {} failed", tally.failed));
                    }
                    text
                }).collect::<Vec<_>>();
                let summary = if calls.is_empty() {
                    String::new()
                } else {
                    format!(" Among them, the calls that returned: {}.", calls.join("; "))
                };
                view! {
                    <p class="dropped" data-testid="events-dropped">
                        {format!("{dropped} events of this run were not sent to this page whole: the run made them faster than a page can show them. The calls happened all the same, and each event shown has the kernel's view at that moment.{summary}")}
                    </p>
                }
            })
        })}
        <div class="notices">
            <p class="explanation" data-testid="explanation">{explanation}</p>
            <p class="capture-status" data-testid="capture-status">{move || model.with(|m| {
                let run = m.run.as_ref()?;
                Some(capture_text(run.capture.as_ref()?, run.packets.len()))
            })}</p>
        </div>
    }
}

/// What the page says of a run's capture: how many packets, on which network, and what was
/// lost, or why there are none.
fn capture_text(capture: &shared::Capture, packets: usize) -> String {
    if !capture.on {
        let why = capture.off_because.as_deref().unwrap_or("packets are off");
        return format!("Packets: none shown ({why}).");
    }
    let scope = capture
        .scope
        .as_deref()
        .unwrap_or("the run's own network (its own loopback)");
    let mut text = format!(
        "Packets: {packets} captured on {scope}, each kept to its first {} bytes.",
        capture.snaplen
    );
    if capture.beyond_limit > 0 {
        text.push_str(&format!(
            " {} more were not kept: the run's limit is {} packets.",
            capture.beyond_limit,
            shared::packet::PACKETS_PER_RUN
        ));
    }
    if capture.dropped_by_kernel > 0 {
        text.push_str(&format!(
            " The kernel dropped {} before Socket Lab could read them.",
            capture.dropped_by_kernel
        ));
    }
    text
}

fn status_text(run: &RunView) -> String {
    match (&run.source, &run.outcome) {
        (Source::File { name }, _) => format!("from {name}"),
        (_, None) => "running…".to_owned(),
        (_, Some(shared::RunOutcome::Completed)) => "finished".to_owned(),
        (_, Some(shared::RunOutcome::Cancelled { reason })) => format!("stopped: {reason}"),
        (_, Some(shared::RunOutcome::Failed { message })) => format!("failed: {message}"),
    }
}
