//! `backend bench --quick --json` runs every part of the benchmark against a real server and
//! reports every figure. It checks what the figures say about correctness (every event of the
//! firehose accounted for, every part measured), not how fast this machine is: timings are
//! the benchmark's to print (PERFORMANCE.md), not a test's to assert.

use std::process::Command;

use backend::bench::{Report, by_id};

#[test]
fn a_quick_bench_measures_every_figure() {
    let output = Command::new(env!("CARGO_BIN_EXE_backend"))
        .args(["bench", "--quick", "--json"])
        .output()
        .expect("the backend runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the bench failed: {stderr}");
    let report: Report = serde_json::from_slice(&output.stdout).expect("--json prints a report");
    assert!(report.quick);
    assert!(report.machine.cpus >= 1);
    assert_eq!(
        report.date.len(),
        10,
        "a date like 2026-11-29: {}",
        report.date
    );

    let figures = by_id(&report);
    for id in [
        "start_to_page_ms",
        "latency_1_session_p50",
        "latency_1_session_p99",
        "latency_1_session_p999",
        "firehose_events_per_sec",
        "firehose_events_whole_per_sec",
        "firehose_frames_per_sec",
        "firehose_summarised",
        "idle_session_kib",
        "active_session_kib",
        "latency_200_sessions_p99",
        "latency_200_sessions_in_step_p99",
        "exchange_watched_ms",
        "exchange_unwatched_ms",
        "watching_cost_ratio",
        "capture_exchange_ratio",
        "network_creation_ms",
        "capture_latency_p50_ratio",
        "capture_latency_p99_ratio",
        "capture_latency_namespace_ratio",
        "capture_latency_bytes_mismatch",
        "capture_firehose_events_per_sec",
        "capture_firehose_kernel_drops",
        "capture_firehose_ratio",
        "capture_sessions_p99_ratio",
    ] {
        let figure = figures.get(id).unwrap_or_else(|| panic!("no figure {id}"));
        let value = figure
            .value
            .unwrap_or_else(|| panic!("{id} was not measured"));
        assert!(value.is_finite() && value >= 0.0, "{id} = {value}");
    }
    // Latencies are ordered, and each is a real, positive time.
    let value = |id: &str| figures[id].value.unwrap();
    assert!(value("latency_1_session_p50") > 0.0);
    assert!(value("latency_1_session_p50") <= value("latency_1_session_p99"));
    assert!(value("latency_1_session_p99") <= value("latency_1_session_p999"));
    // The firehose made events, and every one arrived or was counted as dropped.
    assert!(value("firehose_events_per_sec") > 0.0);
    assert_eq!(figures["firehose_unaccounted"].value, Some(0.0));
    assert_eq!(figures["firehose_unaccounted"].met, Some(true));
    // Every byte the captured echo's client sent is in a packet the capture kept, once.
    assert_eq!(figures["capture_latency_bytes_mismatch"].value, Some(0.0));
    assert!(value("capture_firehose_events_per_sec") > 0.0);
    // The page's size is what the server sent: measured whenever a page is built (test.sh
    // builds it first), smaller with brotli than with gzip.
    let page_built =
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/index.html")).is_file();
    let gzip = figures["page_gzip_kb"].value;
    if page_built {
        let gzip = gzip.expect("the built page's size was measured");
        assert!(gzip > 10.0, "the page is {gzip} KB with gzip");
        if let Some(brotli) = figures["page_brotli_kb"].value {
            assert!(
                brotli > 10.0 && brotli < gzip,
                "brotli {brotli} KB, gzip {gzip} KB"
            );
        }
    }
    // Goals decide `met`, and the table prints every figure.
    for figure in &report.figures {
        if figure.goal.is_some() && figure.value.is_some() {
            assert!(
                figure.met.is_some(),
                "{} has a goal but no verdict",
                figure.id
            );
        }
        assert!(backend::bench::table(&report).contains(&figure.what));
    }
}
