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
    let mut packets = 0;
    for _ in 0..exchanges {
        let own = RunNetwork::own_for_one_run();
        for (network, times) in [(&own, &mut captured), (&machine, &mut plain)] {
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
