//! Boxes that scroll and draw only what they show: the rows on screen of a long list, whether
//! a box is on screen at all, where it is scrolled to, and keeping a row in view.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::diagram::Px;
use crate::model::Model;

/// The height of a row of the event log, in pixels (fixed in style.css, so that only the rows
/// on screen need drawing).
pub(crate) const LOG_ROW_HEIGHT: Px = 28;

/// Rows drawn beyond the visible ones, above and below, so that scrolling shows no gap. Every
/// row on screen is redrawn each frame of a live run, so there are only a few.
const OVERSCAN_ROWS: usize = 4;

/// A list of at most this many rows is drawn whole, so that a short run's events are all in
/// the page (to search it, or print it); a longer one only where it is scrolled to.
const WHOLE_LIST_ROWS: usize = 64;

/// The rows of a list of `total` rows of `row_height` that a box scrolled to `scroll_top` and
/// `height` tall shows, with some to spare.
pub(crate) fn visible_rows(
    scroll_top: Px,
    height: Px,
    row_height: Px,
    total: usize,
) -> std::ops::Range<usize> {
    if total <= WHOLE_LIST_ROWS {
        return 0..total;
    }
    let first = usize::try_from(scroll_top.max(0) / row_height).unwrap_or(usize::MAX);
    let count = usize::try_from(
        height
            .max(0)
            .unsigned_abs()
            .div_ceil(row_height.unsigned_abs()),
    )
    .unwrap_or(usize::MAX);
    let start = first.saturating_sub(OVERSCAN_ROWS).min(total);
    let end = (first + count + OVERSCAN_ROWS).min(total);
    start..end
}

/// A count of rows as pixels' arithmetic needs it.
pub(crate) fn rows_as_px(rows: usize) -> Px {
    Px::try_from(rows).unwrap_or(Px::MAX / LOG_ROW_HEIGHT)
}

/// How far outside the window a box counts as on screen: it is drawn a little before it is
/// scrolled into view.
const ON_SCREEN_MARGIN: &str = "300px";

/// Keeps `on_screen` saying whether the box `node` is on screen (within
/// [`ON_SCREEN_MARGIN`] of the window), as the browser's IntersectionObserver reports it. The
/// flag starts true, so that the box is drawn until the browser first says otherwise.
pub(crate) fn watch_on_screen(node: NodeRef<leptos::html::Div>, on_screen: RwSignal<bool>) {
    Effect::new(move |_| {
        let Some(element) = node.get() else {
            return;
        };
        let report = Closure::<dyn Fn(js_sys::Array)>::new(move |entries: js_sys::Array| {
            // In order: the last entry is the box's state now.
            if let Some(entry) = entries.iter().last() {
                let entry: web_sys::IntersectionObserverEntry = entry.unchecked_into();
                on_screen.set(entry.is_intersecting());
            }
        });
        let options = web_sys::IntersectionObserverInit::new();
        options.set_root_margin(ON_SCREEN_MARGIN);
        if let Ok(observer) = web_sys::IntersectionObserver::new_with_options(
            report.as_ref().unchecked_ref(),
            &options,
        ) {
            observer.observe(&element);
            // The run panel, and so its boxes, stay for the page's life (the page shows it
            // once there is a run, and always has one after), and so does the observer.
            report.forget();
        }
    });
}

/// Keeps `draw_all` set while the page is printed: a printed page shows every box as it is
/// now, wherever the window is scrolled.
pub(crate) fn draw_all_while_printing(draw_all: RwSignal<bool>) {
    let _print = window_event_listener(leptos::ev::beforeprint, move |_| draw_all.set(true));
    let _printed = window_event_listener(leptos::ev::afterprint, move |_| draw_all.set(false));
}

/// A flag that flips with each change of `model` while `on_screen` (or `draw_all`) is true,
/// and holds still while it is false: a part of the page that reads the model through it is
/// not drawn again while it is off screen, and is drawn once when it comes back, with
/// whatever changed meanwhile. Read it with `get`: a memo's `track` subscribes without
/// computing it.
pub(crate) fn changes_while_on_screen(
    model: RwSignal<Model>,
    on_screen: RwSignal<bool>,
    draw_all: RwSignal<bool>,
) -> Memo<bool> {
    Memo::new(move |flag: Option<&bool>| {
        let flag = flag.copied().unwrap_or_default();
        if on_screen.get() || draw_all.get() {
            model.track();
            !flag
        } else {
            flag
        }
    })
}

/// Where a scrolling box (the diagram's, the log's) is scrolled to, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BoxScroll {
    /// The top of what the box shows.
    pub(crate) top: Px,
    /// How tall the box is.
    pub(crate) height: Px,
    /// How wide it is (0 until first read).
    pub(crate) width: Px,
    /// Scrolled to the end.
    pub(crate) at_end: bool,
}

impl BoxScroll {
    /// Where `element` is scrolled to now.
    pub(crate) fn of(element: &web_sys::Element) -> Self {
        let (top, height) = (element.scroll_top(), element.client_height());
        BoxScroll {
            top: Px::from(top),
            height: Px::from(height),
            width: Px::from(element.client_width()),
            at_end: top + height >= element.scroll_height() - 1,
        }
    }

    /// Of rows `row_height` tall, the first the box shows and how many it shows.
    pub(crate) fn rows(self, row_height: Px) -> (usize, usize) {
        let rows = |px: Px, round_up: bool| {
            let px = px.max(0).unsigned_abs();
            let row_height = row_height.unsigned_abs();
            let rows = if round_up {
                px.div_ceil(row_height)
            } else {
                px / row_height
            };
            usize::try_from(rows).unwrap_or(usize::MAX)
        };
        (rows(self.top, false), rows(self.height, true))
    }
}

/// A scroll handler that keeps `scroll` saying where the box `node` is scrolled to.
pub(crate) fn keep_scroll(
    node: NodeRef<leptos::html::Div>,
    scroll: RwSignal<BoxScroll>,
) -> impl Fn(leptos::ev::Event) + Copy {
    move |_| {
        if let Some(element) = node.get_untracked() {
            note_scroll(&element, scroll);
        }
    }
}

/// Sets `scroll` to where `element` is scrolled to now, if that changed.
pub(crate) fn note_scroll(element: &web_sys::Element, scroll: RwSignal<BoxScroll>) {
    let now = BoxScroll::of(element);
    scroll.maybe_update(|current| std::mem::replace(current, now) != now);
}

/// Scrolls a box so that the row at `y` (`row_height` tall) is in view: to the end when
/// following the newest event, otherwise only if the row is outside the part of the box not
/// covered by its top `covered` pixels (titles that stay there as it scrolls).
pub(crate) fn keep_in_view(
    element: &web_sys::Element,
    y: Px,
    row_height: Px,
    covered: Px,
    to_end: bool,
) {
    let height = Px::from(element.client_height());
    if to_end {
        element.set_scroll_top(element.scroll_height());
        return;
    }
    let top = Px::from(element.scroll_top());
    if y < top + covered || y + row_height > top + height {
        let middle = y - covered - (height - covered) / 2;
        element.set_scroll_top(i32::try_from(middle.max(0)).unwrap_or(i32::MAX));
    }
}
