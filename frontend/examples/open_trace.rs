//! Times, natively, what the page does when it opens a trace file: decoding it, and building
//! the run's model (endpoints, messages, the diagram's overview). The page's own figures come
//! from headless Chromium (PERFORMANCE.md); this one separates the code's cost from the
//! browser's.
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
    let median = |times: &mut Vec<Duration>| {
        times.sort_unstable();
        times[times.len() / 2]
    };
    println!(
        "{events} events, {} bytes: decoding {:?}, the model {:?} (medians of {RUNS})",
        text.len(),
        median(&mut decoding),
        median(&mut modelling)
    );
    Ok(())
}
