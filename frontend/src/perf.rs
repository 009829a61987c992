//! With `&perf=1`, the page times how long it takes to show what arrives, with the browser's
//! Performance API: a mark when a message (or an opened trace) arrives, and a measure once
//! the page has applied it, re-rendered and laid itself out. A script reads them with
//! `performance.getEntriesByType("measure")` (backend/tests/browser.rs, `page_performance`).

use std::cell::Cell;

use leptos::prelude::window;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

thread_local! {
    static NEXT_MARK: Cell<u64> = const { Cell::new(0) };
    static ENABLED: Cell<bool> = const { Cell::new(false) };
}

/// Turns the page's own timing on (`&perf=1`).
pub(crate) fn enable() {
    ENABLED.with(|enabled| enabled.set(true));
}

/// Times its own life as `name`, when timing is on: for the parts of the page that draw.
pub(crate) struct Span(Option<(&'static str, String)>);

pub(crate) fn span(name: &'static str) -> Span {
    Span(ENABLED.with(Cell::get).then(|| (name, start())))
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some((name, start)) = self.0.take() {
            measure_now(name, &start);
            forget(&start);
        }
    }
}

/// Clears a mark that has been measured from, or will not be.
pub(crate) fn forget(mark: &str) {
    if let Some(performance) = window().performance() {
        performance.clear_marks_with_mark_name(mark);
    }
}

/// Marks the moment something arrived; returns the mark's name.
pub(crate) fn start() -> String {
    start_named("arrived")
}

fn start_named(what: &str) -> String {
    let number = NEXT_MARK.with(|next| next.replace(next.get() + 1));
    let name = format!("{what}-{number}");
    if let Some(performance) = window().performance() {
        let _ = performance.mark(&name);
    }
    name
}

/// Measures from the mark `start` to now, as `name`: what was done at once, before the
/// page's reactive updates.
pub(crate) fn measure_now(name: &str, start: &str) {
    if let Some(performance) = window().performance() {
        let _ = performance.measure_with_start_mark(name, start);
    }
}

/// Measures from the mark `start` to when the page shows what arrived, as `name`. The
/// page's reactive updates run as microtasks after the message handler; a timeout runs
/// after all of them, and reading the layout there makes the browser lay the page out.
pub(crate) fn measure_when_shown(name: String, start: String) {
    let measure = Closure::once_into_js(move || {
        let layout = start_named("layout");
        if let Some(root) = window().document().and_then(|d| d.document_element()) {
            let _ = root.client_height();
        }
        measure_now("layout", &layout);
        if let Some(performance) = window().performance() {
            let _ = performance.measure_with_start_mark(&name, &start);
            performance.clear_marks_with_mark_name(&start);
        }
    });
    let _ =
        window().set_timeout_with_callback_and_timeout_and_arguments_0(measure.unchecked_ref(), 0);
}
