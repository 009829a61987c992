//! What capturing a run's packets costs: the seed exchange (Simple Server and Simple Client)
//! recorded with its IP sockets in a network of Socket Lab's own, every packet captured and
//! parsed, against the same exchange on the machine's network with no capture, the two
//! interleaved in one run of the bench (ratios hold on a noisy machine; absolute times do
//! not). Each captured exchange has a network made for it alone, made before it starts, as a
//! session's Play takes one the process made ahead (`network_pool.rs`). Also what making and
//! ending a network cost, which every run pays, off the path its events take.

use std::time::Instant;

use shared::RunOutcome;

use super::{BenchError, Figure, Goal, fail, median, millis};
use crate::network::RunNetwork;

pub(super) async fn figures(exchanges: usize) -> Result<Vec<Figure>, BenchError> {
    let own = RunNetwork::own();
    if !own.is_own() {
        return Ok(vec![
            Figure::new(
                "capture_exchange_ratio",
                "seed exchange with every packet captured / with capture off",
                None,
                "x",
                Some(Goal::AtMost(1.1)),
            )
            .note("not measured: this system gives Socket Lab no network of its own"),
        ]);
    }
    let machine = RunNetwork::uncaptured("the bench's capture-off side");
    drop(own);
    let mut captured = Vec::with_capacity(exchanges);
    let mut plain = Vec::with_capacity(exchanges);
    let mut ending = Vec::with_capacity(exchanges);
    let mut bare = Vec::with_capacity(exchanges);
    let mut packets = 0;
    for exchange in 0..exchanges {
        let own = RunNetwork::own_for_one_run();
        let uncaptured = RunNetwork::own_uncaptured_for_one_run().map_err(BenchError)?;
        let mut sides = [
            (&own, &mut captured),
            (&machine, &mut plain),
            (&uncaptured, &mut bare),
        ];
        // Each side takes its turn first: the kernel tears the last exchange's two
        // namespaces down on a worker of its own after they are let go, on one of the two
        // cores, and whichever exchange runs first meets it (measured: the captured side,
        // always first, took 2.4 times as long as capture off; 1.3 to 1.7 times once the
        // order turns, and the side in a network of its own with nothing captured 0.9 times
        // and then 1.0 to 1.2 times).
        sides.rotate_left(exchange % 3);
        for (network, times) in sides {
            let began = Instant::now();
            let recording = crate::run::record_in("simple-server-client", network)
                .await
                .map_err(|error| fail("a recorded exchange", error))?;
            if recording.outcome != RunOutcome::Completed {
                return Err(BenchError(format!(
                    "an exchange ended {:?}",
                    recording.outcome
                )));
            }
            times.push(began.elapsed());
            packets = packets.max(recording.packets.len());
        }
        let began = Instant::now();
        drop(own);
        ending.push(began.elapsed());
    }
    let mut making = Vec::with_capacity(exchanges.min(50));
    for _ in 0..exchanges.min(50) {
        let began = Instant::now();
        let network = RunNetwork::own_for_one_run();
        making.push(began.elapsed());
        drop(network);
    }
    let (with, without) = (millis(median(&mut captured)), millis(median(&mut plain)));
    let alone = millis(median(&mut bare));
    Ok(vec![
        Figure::new(
            "capture_exchange_ratio",
            "seed exchange with every packet captured / with capture off",
            Some(with / without),
            "x",
            Some(Goal::AtMost(1.1)),
        )
        .note(format!(
            "medians of {exchanges}, interleaved: {with:.3} ms in a network of the run's own \
             (made before it) with its {packets} packets captured, {without:.3} ms on the \
             machine's network"
        )),
        Figure::new(
            "capture_exchange_namespace_ratio",
            "seed exchange in a network of its own with nothing captured / the machine's",
            Some(alone / without),
            "x",
            None,
        )
        .note(format!(
            "what the fresh namespace alone costs, apart from capture: {alone:.3} ms, medians \
             of {exchanges}, interleaved with the two above"
        )),
        Figure::new(
            "network_creation_ms",
            "making a run's own network (namespace, loopback up, capture socket and thread)",
            Some(millis(median(&mut making))),
            "ms",
            None,
        )
        .note("paid once per run, made ahead on a thread of the pool's"),
        Figure::new(
            "network_ending_ms",
            "ending a run's own network (its capture thread joined, the namespace let go)",
            Some(millis(median(&mut ending))),
            "ms",
            None,
        )
        .note(format!(
            "median of {exchanges}, after each captured exchange"
        )),
    ])
}
