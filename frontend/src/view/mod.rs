//! The run panel, composed of one component a file, each reading only the part of the model
//! it shows: a new event redraws the rows on screen and the cards, not ten thousand others.
//!
//! - [`summary`]: the run's title and status, and the notices above the workbench (the
//!   outside program's instructions, dropped events, the explanation of the step, the
//!   capture's state).
//! - [`controls`]: stepping, replaying, saving and exporting.
//! - [`programs`]: the programs with their highlighted lines.
//! - [`diagram`]: the sequence diagram.
//! - [`sockets`]: a card per socket, as the kernel reports it.
//! - [`state_machine`]: the TCP state diagram, each socket's state marked on it and the
//!   transitions of the step shown lit.
//! - [`log`]: the events and packets, in a panel of its own that can be collapsed.
//! - [`scroll`]: boxes that scroll and draw only what they show.
//! - [`manual`]: the manual mode's form.
//!
//! On a wide screen (a projector, a laptop) the programs, the diagram and the sockets sit side
//! by side in one screen's height (`style.css`, `.workbench`), so that the line that ran, the
//! call it made, what travelled and what each socket now is are seen at one glance.

pub(crate) mod controls;
pub(crate) mod diagram;
pub(crate) mod log;
pub(crate) mod manual;
pub(crate) mod programs;
pub(crate) mod scroll;
pub(crate) mod sockets;
pub(crate) mod state_machine;
pub(crate) mod summary;

use leptos::prelude::*;

use crate::app::Replay;
use crate::model::Model;

/// What the run panel's components share: the model, where the page has stepped to, and the
/// switches more than one of them reads. Signals and memos are handles, so this is `Copy`.
#[derive(Clone, Copy)]
pub(crate) struct Panel {
    pub(crate) model: RwSignal<Model>,
    /// The event shown (none before the first), how many there are, and whether the page
    /// follows the newest.
    pub(crate) position: Memo<(Option<usize>, usize, bool)>,
    /// The packet stepped to, how many packets there are, and whether the step shown is the
    /// run's last.
    pub(crate) packet_step: Memo<(Option<usize>, usize, bool)>,
    /// Set while the page is printed or the diagram exported: every box is drawn wherever it
    /// is.
    pub(crate) draw_all: RwSignal<bool>,
    /// Whether the diagram's box is on screen (it is drawn only then).
    pub(crate) diagram_on_screen: RwSignal<bool>,
    /// Draw every call, rather than folding long stretches of sends and receives.
    pub(crate) zoomed_in: RwSignal<bool>,
    /// Label the diagram's messages with their bytes in hexadecimal.
    pub(crate) show_hex: RwSignal<bool>,
    /// The sockets as they stood at the step shown, each with the call it waits in.
    pub(crate) sockets: Memo<Vec<sockets::ShownSocket>>,
}

impl Panel {
    pub(crate) fn selected(self) -> Option<usize> {
        self.position.get().0
    }

    pub(crate) fn total(self) -> usize {
        self.position.get().1
    }

    pub(crate) fn following(self) -> bool {
        self.position.get().2
    }
}

/// The run shown: its summary and controls, the workbench of programs, diagram and sockets,
/// and the log.
pub(crate) fn run_panel(
    model: RwSignal<Model>,
    replay: Replay,
    filter: RwSignal<Option<String>>,
    newest_first: RwSignal<bool>,
) -> impl IntoView {
    // Made untracked, as a component is: whatever its parts read as they are made must not
    // make the view around the panel (a `Show`) make it again.
    untrack(move || panel_view(model, replay, filter, newest_first))
}

fn panel_view(
    model: RwSignal<Model>,
    replay: Replay,
    filter: RwSignal<Option<String>>,
    newest_first: RwSignal<bool>,
) -> impl IntoView {
    let position = Memo::new(move |_| {
        model.with(|m| {
            m.run.as_ref().map_or((None, 0, true), |run| {
                (run.selected(), run.events.len(), run.cursor.is_none())
            })
        })
    });
    let packet_step = Memo::new(move |_| {
        model.with(|m| {
            m.run.as_ref().map_or((None, 0, true), |run| {
                (
                    run.selected_packet().map(|(index, _)| index),
                    run.packets.len(),
                    run.at_last_step(),
                )
            })
        })
    });
    let draw_all = RwSignal::new(false);
    scroll::draw_all_while_printing(draw_all);
    let panel = Panel {
        model,
        position,
        packet_step,
        draw_all,
        diagram_on_screen: RwSignal::new(true),
        zoomed_in: RwSignal::new(false),
        show_hex: RwSignal::new(false),
        sockets: sockets::shown_sockets(model),
    };
    // Each part is a plain function of the panel: it runs once, and only the closures,
    // memos and effects it makes read the model.
    view! {
        {summary::run_title(panel)}
        {controls::controls(panel, replay)}
        {summary::notices(panel)}
        <section class="workbench" data-testid="workbench">
            <div class="code-column">
                {programs::programs(panel)}
                {state_machine::state_machine(panel)}
            </div>
            {diagram::diagram(panel)}
            {sockets::sockets(panel)}
        </section>
        {log::log(panel, filter, newest_first)}
    }
}
