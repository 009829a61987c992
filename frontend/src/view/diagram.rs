//! The sequence diagram: a lane per socket under its program's name, a bar per call, an
//! arrow per message and per packet. Only the rows on screen are drawn (the geometry is
//! `crate::diagram`'s, plain Rust).

use leptos::prelude::*;

use crate::diagram::{Fate, HEADER_HEIGHT, ROW_HEIGHT, Sizes};
use crate::model::role_colour;
use crate::perf;
use crate::view::Panel;
use crate::view::scroll::{
    BoxScroll, changes_while_on_screen, keep_in_view, keep_scroll, note_scroll, rows_as_px,
    visible_rows, watch_on_screen,
};

/// What the diagram draws for the rows on screen, and which row holds the selected event
/// (`highlight_row` only when the user stepped to it; `selected_row` always, to keep in view).
#[derive(Clone, Debug, PartialEq)]
struct DiagramFrame {
    diagram: crate::diagram::Diagram,
    bands: Vec<crate::diagram::SummaryBand>,
    highlight_row: Option<usize>,
    selected_row: Option<usize>,
}

/// The diagram's styles, inside the SVG so that an exported diagram looks the same. The
/// colours fall back to the light theme's outside the page. Every rule starts with `svg`: a
/// `<style>` in an inline SVG applies to the whole page.
const DIAGRAM_STYLE: &str = "
svg .lane-title { font: 600 13px ui-monospace, monospace; fill: var(--fg, #1d1d1f); }
svg .lane-process { font: 600 12px ui-monospace, monospace; fill: var(--muted, #666); }
svg .lifeline { stroke: var(--line, #ccc); stroke-dasharray: 4 4; }
svg .bar { fill: var(--muted, #666); opacity: .85; }
svg .bar.role-server { fill: var(--server, #0b63c5); } svg .bar.role-client { fill: var(--client, #d95f02); }
svg .bar.role-sandbox { fill: var(--sandbox, #1b9e77); }
svg .lane-title.outside { font-style: italic; }
svg .bar.waiting { fill: var(--wait, #b58900); } svg .bar.failed { fill: var(--bad, #c62828); }
svg .bar-label { font: 12px ui-monospace, monospace; fill: var(--fg, #1d1d1f); }
svg .message { stroke: var(--client, #d95f02); stroke-width: 1.5; }
svg .message.datagram { stroke-dasharray: 7 4; }
svg .message.queued { stroke-dasharray: 2 4; }
svg .message.discarded { stroke: var(--bad, #c62828); stroke-dasharray: 2 4; }
svg .cross { stroke: var(--bad, #c62828); stroke-width: 2; }
svg .arrowhead { fill: var(--client, #d95f02); }
svg .message-label { font: 600 12px ui-monospace, monospace; fill: var(--client-text, #b84f00); }
svg .selected-row { fill: var(--wait, #b58900); opacity: .15; }
svg .fold { fill: var(--client, #d95f02); opacity: .25; stroke: var(--client, #d95f02); stroke-dasharray: 3 3; }
svg .packet { stroke: var(--wire, #6a3d9a); stroke-width: 1; opacity: .8; }
svg .packet.selected { stroke-width: 3; opacity: 1; }
svg .packet-head { fill: var(--wire, #6a3d9a); }
svg .packet-label { font: 10px ui-monospace, monospace; fill: var(--wire, #6a3d9a); }
svg .packet-label.selected { font-weight: 700; }
svg .lane-headers-ground { fill: var(--card, #fff); }
@media (min-width: 1800px) {
  svg .lane-title, svg .lane-process, svg .bar-label, svg .message-label, svg .packet-label { font-size: 14px; }
}
svg .message-label, svg .packet-label, svg .bar-label { paint-order: stroke; stroke: var(--card, #fff); stroke-width: 3px; stroke-linejoin: round; }
";

/// The width from which the diagram's labels are 14 px, for a projector: the style's
/// `min-width` above.
const PROJECTOR_WIDTH: f64 = 1800.0;

/// The label sizes the style gives the diagram in this window.
fn label_sizes() -> Sizes {
    let wide = window()
        .inner_width()
        .ok()
        .and_then(|width| width.as_f64())
        .is_some_and(|width| width >= PROJECTOR_WIDTH);
    if wide { Sizes::PROJECTOR } else { Sizes::USUAL }
}

/// The diagram's box, which scrolls both ways and keeps the selected row in view.
pub(crate) fn diagram(panel: Panel) -> impl IntoView {
    let Panel {
        model,
        position,
        draw_all,
        diagram_on_screen,
        zoomed_in,
        show_hex,
        ..
    } = panel;
    let following = move || panel.following();
    // The diagram is drawn only while on screen: a student watching the log while a busy run
    // pours in does not pay for laying out the diagram.
    let diagram_box: NodeRef<leptos::html::Div> = NodeRef::new();
    watch_on_screen(diagram_box, diagram_on_screen);
    let diagram_changes = changes_while_on_screen(model, diagram_on_screen, draw_all);
    let diagram_scroll = RwSignal::new(BoxScroll {
        top: 0,
        height: 600,
        // The box's width, which the lanes are fitted to (a laptop's box holds three
        // sockets' lanes), read where the box is scrolled to its row, which lays the page
        // out anyway; 0 until then.
        width: 0,
        at_end: true,
    });
    // While the diagram follows a live run at its end, it draws the last rows, however far
    // its box has scrolled yet: a new event is drawn in the frame it arrives, and the scroll
    // that follows it, to the rows already drawn, draws nothing again (as the log does).
    let diagram_anchor = Memo::new(move |_| {
        let scroll = diagram_scroll.get();
        let at_end = scroll.at_end && following();
        ((!at_end).then_some(scroll.top), scroll.height, scroll.width)
    });
    // What the diagram draws, computed once per change of the run, the scroll or the zoom,
    // and compared with what it drew: a new event below the rows on screen redraws nothing.
    let frame = Memo::new(move |_| {
        let _span = perf::span("diagram");
        let (anchor, height, fit_width) = diagram_anchor.get();
        let zoomed_in = zoomed_in.get();
        // The top of the box scrolled to the end of a diagram of `rows` rows.
        let scroll_top = |rows: usize| {
            anchor.unwrap_or_else(|| {
                (HEADER_HEIGHT + (rows_as_px(rows) + 1) * ROW_HEIGHT - height).max(0)
            })
        };
        let _ = diagram_changes.get();
        model.with_untracked(|m| {
            // A run with no call yet has nothing to draw; the box says what will come there.
            let run = m.run.as_ref().filter(|run| !run.events.is_empty())?;
            let upto = run.selected().map_or(0, |index| index + 1);
            let selected_index = run.cursor.and(run.selected());
            // Long stretches of sends and receives are folded into one row each, unless the
            // user zooms in to see every call.
            let folded = if zoomed_in {
                std::borrow::Cow::Borrowed(&[][..])
            } else {
                crate::diagram::overview(run, upto)
            };
            let summarised = folded
                .iter()
                .any(|row| matches!(row, crate::diagram::OverviewRow::Summary { .. }));
            // The row of the selected event or packet (kept in view), highlighted when stepped
            // to.
            let timeline = crate::timeline::Timeline::of(run, upto);
            let selected_row = if summarised {
                run.selected()
                    .map(|index| crate::diagram::row_holding(&folded, index).unwrap_or(index))
            } else {
                crate::diagram::selected_row(run, &timeline)
            };
            let highlight_row = selected_index.and(selected_row);
            let (diagram, bands) = if summarised {
                let rows = visible_rows(
                    scroll_top(folded.len()) - HEADER_HEIGHT,
                    height,
                    ROW_HEIGHT,
                    folded.len(),
                );
                crate::diagram::layout_overview(run, upto, &folded, rows, fit_width)
            } else {
                let rows = visible_rows(
                    scroll_top(timeline.len()) - HEADER_HEIGHT,
                    height,
                    ROW_HEIGHT,
                    timeline.len(),
                );
                (
                    crate::diagram::layout_window_at(
                        run,
                        upto,
                        rows,
                        Sizes {
                            fit_width,
                            ..label_sizes()
                        },
                    ),
                    Vec::new(),
                )
            };
            Some(DiagramFrame {
                diagram,
                bands,
                highlight_row,
                selected_row,
            })
        })
    });
    let has_diagram = Memo::new(move |_| frame.with(Option::is_some));
    let size = move || {
        frame.with(|frame| {
            frame
                .as_ref()
                .map_or((0, 0), |frame| (frame.diagram.width, frame.diagram.height))
        })
    };
    let diagram_content = move || {
        let hex = show_hex.get();
        frame.with(|frame| {
            let DiagramFrame {
                diagram,
                bands,
                highlight_row,
                ..
            } = frame.as_ref()?;
            Some(view! {
                {highlight_row.map(|row| view! {
                    <rect class="selected-row" x="0" y=crate::diagram::row_y(row) - ROW_HEIGHT / 2
                        width=diagram.width height=ROW_HEIGHT/>
                })}
                {diagram.lanes.iter().map(|lane| view! {
                    <text x=lane.x - diagram.lane_width / 2 + 8 y=14 class="lane-process">{lane.process.clone().unwrap_or_default()}</text>
                    <text x=lane.x y=HEADER_HEIGHT / 2 + 6 class="lane-title" text-anchor="middle">{lane.title.clone()}</text>
                    <line x1=lane.x y1=HEADER_HEIGHT - 8 x2=lane.x y2=diagram.height class="lifeline"/>
                }).collect_view()}
                {bands.iter().map(|band| view! {
                    <rect class="fold" data-testid="fold" x=band.x.0 y=band.y - ROW_HEIGHT / 2 + 3
                        width=band.x.1 - band.x.0 height=ROW_HEIGHT - 6 rx="4"/>
                    <text x=band.x.1 + 8 y=band.y + 4 class="bar-label">{band.label.clone()}</text>
                }).collect_view()}
                {diagram.bars.iter().map(|bar| {
                    let height = bar.bottom - bar.top + ROW_HEIGHT - 6;
                    let class = if bar.failed { "bar failed".to_owned() } else if bar.waiting { "bar waiting".to_owned() } else { format!("bar role-{}", role_colour(&bar.role)) };
                    view! {
                        <rect x=bar.x - 6 y=bar.top - ROW_HEIGHT / 2 + 3 width="12"
                            height=height class=class rx="3"/>
                        <text x=bar.x + 10 y=bar.top + 4 class="bar-label">{bar.label.clone()}</text>
                    }
                }).collect_view()}
                {diagram.arrows.iter().map(|arrow| {
                    let (fate, marker) = match arrow.fate {
                        Fate::Taken => ("taken", "url(#arrowhead)"),
                        Fate::Queued => ("queued", "url(#arrowhead)"),
                        Fate::Discarded => ("discarded", "url(#cross)"),
                    };
                    let kind = if arrow.datagram { " datagram" } else { "" };
                    let label = if hex { arrow.hex.clone() } else { arrow.label.clone() };
                    view! {
                        <line x1=arrow.from.0 y1=arrow.from.1 x2=arrow.to.0 y2=arrow.to.1 data-testid="message"
                            data-fate=fate class=format!("message {fate}{kind}") marker-end=marker/>
                        <text x=arrow.label_at.0 y=arrow.label_at.1
                            class="message-label" text-anchor="middle">{label}</text>
                    }
                }).collect_view()}
                {diagram.packets.iter().map(|packet| {
                    let selected = if packet.selected { " selected" } else { "" };
                    let index = packet.index;
                    view! {
                        <g data-testid="packet" data-kind=packet.kind.clone() data-selected=packet.selected.to_string()
                            on:click=move |_| model.update(|m| m.with_run(|run| run.seek_packet(index)))>
                            <line x1=packet.from.0 y1=packet.from.1 x2=packet.to.0 y2=packet.to.1
                                class=format!("packet{selected}") marker-end="url(#packethead)"/>
                            <text x=packet.label_at.0 y=packet.label_at.1 class=format!("packet-label{selected}")
                                text-anchor="middle">{packet.label.clone()}</text>
                        </g>
                    }
                }).collect_view()}
            })
        })
    };
    // The SVG and its style stay while the run does; only what is drawn in it changes (a new
    // <style> element each frame would make the browser restyle the whole page).
    // The lanes' titles again, in a strip that stays at the top of the box while the diagram
    // scrolls under it (the diagram's own titles, under the strip, are for the exported SVG).
    // A closure rather than a memo: the strip is redrawn with the frame, which changes more
    // often than its lanes, but a memo of its own would cost the page's code more.
    let lanes = move || {
        frame.with(|frame| {
            frame.as_ref().map_or_else(Vec::new, |frame| {
                frame
                    .diagram
                    .lanes
                    .iter()
                    .map(|lane| {
                        let left = lane.x - frame.diagram.lane_width / 2;
                        (lane.x, left, lane.title.clone(), lane.process.clone())
                    })
                    .collect::<Vec<_>>()
            })
        })
    };
    let diagram = move || {
        has_diagram.get().then(|| view! {
            <svg class="lane-headers" data-testid="lane-headers" aria-hidden="true"
                width=move || size().0 height=HEADER_HEIGHT>
                <rect class="lane-headers-ground" x="0" y="0" width=move || size().0 height=HEADER_HEIGHT/>
                {move || lanes().into_iter().map(|(x, left, title, process)| view! {
                    <text x=left + 8 y=14 class="lane-process">{process.unwrap_or_default()}</text>
                    <text x=x y=HEADER_HEIGHT / 2 + 6 class="lane-title" text-anchor="middle">{title}</text>
                }).collect_view()}
            </svg>
            <svg data-testid="diagram" xmlns="http://www.w3.org/2000/svg"
                width=move || size().0 height=move || size().1
                viewBox=move || { let (width, height) = size(); format!("0 0 {width} {height}") }>
                <style>{DIAGRAM_STYLE}</style>
                <defs>
                    <marker id="arrowhead" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">
                        <path d="M0,0 L10,4 L0,8 z" class="arrowhead"/>
                    </marker>
                    <marker id="cross" markerWidth="10" markerHeight="10" refX="5" refY="5" orient="auto">
                        <path d="M1,1 L9,9 M9,1 L1,9" class="cross"/>
                    </marker>
                    <marker id="packethead" markerWidth="7" markerHeight="6" refX="6" refY="3" orient="auto">
                        <path d="M0,0 L7,3 L0,6 z" class="packet-head"/>
                    </marker>
                </defs>
                <g>{diagram_content}</g>
            </svg>
        })
    };
    // Keep the selected event in view: the newest one while following, the one stepped to
    // otherwise.
    let diagram_to_selected = move |index: usize, following: bool| {
        let Some(element) = diagram_box.get_untracked() else {
            return;
        };
        // The row of the packet or event stepped to.
        let row = frame
            .with_untracked(|frame| frame.as_ref().and_then(|frame| frame.selected_row))
            .unwrap_or(index);
        let (top, height) = (crate::diagram::row_y(row) - ROW_HEIGHT / 2, ROW_HEIGHT);
        // After the diagram has been redrawn at its new height (zooming changes it).
        request_animation_frame(move || {
            keep_in_view(&element, top, height, HEADER_HEIGHT, following);
            note_scroll(&element, diagram_scroll);
        });
    };
    Effect::new(move |_| {
        let _span = perf::span("keep-in-view");
        let (selected, _, following) = position.get();
        // Read, not peeked: zooming in or out, or stepping to a packet, keeps what is
        // stepped to in view too.
        zoomed_in.track();
        panel.packet_step.track();
        if let Some(index) = selected
            && (diagram_on_screen.get() || draw_all.get())
        {
            diagram_to_selected(index, following);
        }
    });
    // The box scrolls, so keyboard users can reach it with Tab and scroll it with the keys
    // (← and → still step, as everywhere on the page).
    view! {
        <div class="diagram" tabindex="0" role="region" aria-label="The sequence diagram"
            node_ref=diagram_box on:scroll=keep_scroll(diagram_box, diagram_scroll)>{diagram}</div>
    }
}
