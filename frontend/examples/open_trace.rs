//! Times, natively, what the page does when it opens a trace file: decoding it, and building
//! the run's model (endpoints, messages, the diagram's overview); and what each frame of a
//! live run at that length asks of the diagram. The page's own figures come from headless
//! Chromium (PERFORMANCE.md); this one separates the code's cost from the browser's.
//!
//! ```sh
//! cargo run --release -p frontend --example open_trace -- trace.json
//! ```

use std::time::{Duration, Instant};

fn main() -> Result<(), String> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: open_trace <trace.json> (a trace the page saved)")?;
    let text = std::fs::read_to_string(&path).map_err(|error| format!("{path}: {error}"))?;
    const RUNS: usize = 21;
    let (mut decoding, mut modelling) = (Vec::new(), Vec::new());
    let mut events = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let file = shared::TraceFile::parse(&text)?;
        decoding.push(started.elapsed());
        events = file.events.len();
        let started = Instant::now();
        let mut model = frontend::model::Model::default();
        model.show_trace(Ok(file), path.clone());
        modelling.push(started.elapsed());
        std::hint::black_box(&model);
    }
    // What a live run's frame asks of the diagram at the run's end: its last rows with every
    // call drawn, and the folded overview.
    let file = shared::TraceFile::parse(&text)?;
    let mut model = frontend::model::Model::default();
    model.show_trace(Ok(file), path.clone());
    let run = model.run.as_ref().ok_or("the trace opened no run")?;
    let (mut zoomed_in, mut folded) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let started = Instant::now();
        let rows = events.saturating_sub(30)..events;
        std::hint::black_box(frontend::diagram::layout_window(run, events, rows));
        zoomed_in.push(started.elapsed());
        let started = Instant::now();
        let overview = frontend::diagram::overview(run, events);
        let rows = overview.len().saturating_sub(30)..overview.len();
        std::hint::black_box(frontend::diagram::layout_overview(
            run, events, &overview, rows,
        ));
        folded.push(started.elapsed());
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort_unstable();
        times[times.len() / 2]
    };
    println!(
        "{events} events, {} bytes: decoding {:?}, the model {:?}; the diagram's last rows \
         {:?} with every call, {:?} folded (medians of {RUNS})",
        text.len(),
        median(&mut decoding),
        median(&mut modelling),
        median(&mut zoomed_in),
        median(&mut folded),
    );
    Ok(())
}
