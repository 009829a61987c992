//! Times, natively, what the page does when it opens a trace file: decoding it, and building
//! the run's model (endpoints, messages, the diagram's overview). The page's own figures come
//! from headless Chromium (PERFORMANCE.md); this one separates the code's cost from the
//! browser's. It also counts the memory the opened run holds (natively, where a pointer is
//! twice as wide as in the page's wasm32, so the page's figure is somewhat smaller).
//!
//! ```sh
//! cargo run --release -p frontend --example open_trace -- trace.json
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// The system allocator, counting, while `COUNTING` is set, the bytes allocated less those
/// freed. Off, it costs the timings one plain load an allocation.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static HELD_BYTES: AtomicIsize = AtomicIsize::new(0);

fn count(bytes: usize, sign: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        HELD_BYTES.fetch_add(sign * bytes.cast_signed(), Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on to the system allocator as it came; the counter is only
// arithmetic beside it.
#[allow(unsafe_code)] // A global allocator is an unsafe trait; this one only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout.size(), -1);
        count(new_size, 1);
        // SAFETY: the caller's pointer, layout and size, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), -1);
        // SAFETY: a pointer this allocator gave, with its layout, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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
    // What the page keeps of an opened trace: the model, once the file's text is gone.
    COUNTING.store(true, Ordering::Relaxed);
    let file = shared::TraceFile::parse(&text)?;
    let mut model = frontend::model::Model::default();
    model.show_trace(Ok(file), path.clone());
    COUNTING.store(false, Ordering::Relaxed);
    let held = HELD_BYTES.load(Ordering::Relaxed).max(0).cast_unsigned();
    std::hint::black_box(&model);
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
    println!(
        "the opened run holds {:.1} MB, {} bytes an event",
        held as f64 / 1e6,
        held / events.max(1)
    );
    Ok(())
}
