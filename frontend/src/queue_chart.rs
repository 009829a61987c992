//! A socket's receive and send queues over the run, up to the step shown, as a small chart on
//! its card: drawn from the kernel's figures at each event, so that data waiting for a
//! `recv()`, a send queue that grows while the peer does not read, and a full buffer are
//! seen rather than read. Plain Rust: the card puts the markup in an `<svg>`.

use std::fmt::Write;

use crate::model::QueueSample;

/// The chart's size, in its own units (the card stretches it to its width).
pub const WIDTH: u32 = 200;
pub const HEIGHT: u32 = 26;

/// The chart's markup, inside an `<svg viewBox="0 0 WIDTH HEIGHT">`: a step line per queue
/// from the first event to `upto`, both on one scale (the largest figure so far), with a
/// title that says what they reached. `None` while both queues have stayed empty: a card
/// shows a chart only once there was something to see.
pub fn markup(samples: &[QueueSample], upto: usize) -> Option<String> {
    let most = samples
        .iter()
        .map(|sample| sample.recv.max(sample.send))
        .max()
        .filter(|most| *most > 0)?;
    let (most_recv, most_send) = samples.iter().fold((0, 0), |(recv, send), sample| {
        (recv.max(sample.recv), send.max(sample.send))
    });
    let x = |event: usize| {
        if upto == 0 {
            0
        } else {
            u32::try_from(event.min(upto) as u64 * u64::from(WIDTH) / upto as u64).unwrap_or(WIDTH)
        }
    };
    let y = |bytes: u32| {
        let drawn = u64::from(bytes) * u64::from(HEIGHT - 4) / u64::from(most);
        HEIGHT - 2 - u32::try_from(drawn).unwrap_or(HEIGHT - 4)
    };
    let line = |figure: fn(&QueueSample) -> u32| {
        let mut points = String::new();
        let mut last = 0;
        // Per column of the chart, the largest figure in it and the last: a run of ten
        // thousand events draws at most a few points a column.
        let mut column: Option<(u32, u32)> = None;
        let flush = |points: &mut String, column: Option<(u32, u32)>, before: u32, last: u32| {
            if let Some((at, most)) = column {
                let _ = write!(
                    points,
                    "{at},{} {at},{} {at},{} ",
                    y(before),
                    y(most),
                    y(last)
                );
            }
        };
        let mut before = 0;
        for sample in samples {
            let (at, value) = (x(sample.event), figure(sample));
            match column {
                Some((column_at, most)) if column_at == at => {
                    column = Some((at, most.max(value)));
                }
                _ => {
                    flush(&mut points, column, before, last);
                    before = last;
                    column = Some((at, value));
                }
            }
            last = value;
        }
        flush(&mut points, column, before, last);
        let _ = write!(points, "{WIDTH},{}", y(last));
        format!("0,{} {points}", y(0))
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<title>The kernel's queues up to this step: the receive queue (blue) reached {most_recv} B, \
         the send queue (orange) {most_send} B</title>\
         <polyline class=\"recv\" points=\"{}\"/><polyline class=\"send\" points=\"{}\"/>",
        line(|sample| sample.recv),
        line(|sample| sample.send)
    );
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(event: usize, recv: u32, send: u32) -> QueueSample {
        QueueSample { event, recv, send }
    }

    /// The points of the polyline of class `class`.
    fn points(svg: &str, class: &str) -> Vec<(u32, u32)> {
        let start = svg.find(&format!("class=\"{class}\" points=\"")).unwrap() + class.len() + 17;
        let end = start + svg[start..].find('"').unwrap();
        svg[start..end]
            .split_whitespace()
            .map(|point| {
                let (x, y) = point.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn empty_queues_draw_no_chart() {
        assert_eq!(markup(&[], 10), None);
        assert_eq!(markup(&[sample(3, 0, 0)], 10), None);
    }

    #[test]
    fn a_queue_steps_up_when_bytes_wait_and_down_when_they_are_read() {
        // 24 bytes arrive at event 5 and are read at event 10, of a run shown up to 20.
        let svg = markup(&[sample(5, 24, 0), sample(10, 0, 0)], 20).unwrap();
        let recv = points(&svg, "recv");
        let (top, bottom) = (2, HEIGHT - 2);
        assert_eq!(recv.first(), Some(&(0, bottom)));
        assert!(recv.contains(&(WIDTH / 4, top)), "{recv:?}");
        assert!(recv.contains(&(WIDTH / 2, bottom)), "{recv:?}");
        assert_eq!(recv.last(), Some(&(WIDTH, bottom)));
        // The send queue stayed empty: a flat line at the bottom.
        assert!(points(&svg, "send").iter().all(|(_, y)| *y == bottom));
        assert!(svg.contains("reached 24 B"), "{svg}");
    }

    #[test]
    fn ten_thousand_samples_draw_a_few_points_a_column() {
        let samples: Vec<QueueSample> = (0..10_000)
            .map(|event| sample(event, (event % 7) as u32 * 100, 0))
            .collect();
        let svg = markup(&samples, 10_000).unwrap();
        let recv = points(&svg, "recv");
        assert!(
            recv.len() <= 3 * WIDTH as usize + 2,
            "{} points",
            recv.len()
        );
        // The largest figure still reaches the top.
        assert!(recv.iter().any(|(_, y)| *y == 2));
        assert!(recv.iter().all(|(x, y)| *x <= WIDTH && *y <= HEIGHT));
    }
}
