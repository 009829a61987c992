//! One run of a scenario: a fresh lab on a fresh loopback address, its events, its end.
//!
//! Both front doors use this: the WebSocket session (which forwards events in batches) and
//! `backend trace` (which prints them).

use std::cell::OnceCell;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use shared::{Event, RoleProgram, RunOutcome};

use crate::capture::{RunCapture, RunTraffic};
use crate::lab::{EventSink, Lab, Places, RunItem, RunItems};
use crate::loopback::LoopbackPool;
use crate::network::RunNetwork;
use crate::policy::Policy;
use crate::scenario::{self, Gate, PORT, Plan, RunSetup, Scenario};

/// A role of a scenario that a program outside Socket Lab plays (a student's own
/// `client.py` or `server.py`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outside {
    /// The outside program is the client; Socket Lab plays the server and waits for it.
    Client,
    /// The outside program is the server; Socket Lab waits until it listens, then connects.
    Server,
}

impl Outside {
    /// The role's name in the scenarios.
    pub fn role(self) -> &'static str {
        match self {
            Outside::Client => "client",
            Outside::Server => "server",
        }
    }
}

/// How a run meets an outside program.
#[derive(Clone, Copy, Debug)]
pub struct OutsidePeer {
    /// The role the outside program plays.
    pub role: Outside,
    /// The port on 127.0.0.1 where the server listens.
    pub port: u16,
    /// How long to wait for the outside program.
    pub timeout: Duration,
}

/// A run ready to play.
#[derive(Debug)]
pub(crate) struct Run {
    plan: Plan,
    lab: Lab,
    unix_dir: String,
    /// Present when the run pauses before each call.
    gate: Option<Arc<Gate>>,
    /// How long the run may take, and what to say when it takes longer, when an outside
    /// program sets it.
    limit: Option<(Duration, String)>,
    /// The run's share of its network's capture, when its packets are captured.
    capture: Option<RunCapture>,
}

impl Run {
    /// Prepares a run of `scenario` on the next loopback address; its events will come out of
    /// the returned receiver, which ends when the run has ended and its sockets are closed.
    /// Its IP sockets are opened in `network`, whose packets it captures where it can.
    pub(crate) fn prepare(
        scenario: &Scenario,
        policy: Arc<Policy>,
        network: &RunNetwork,
    ) -> (Self, RunItems) {
        let (sink, events) = EventSink::new(policy.limits().event_queue);
        let (mut run, host) = Self::prepare_with_sink(scenario, policy, sink, network);
        run.capture = run
            .lab
            .network()
            .attach(run.lab.sink(), Some(RunTraffic(host)));
        (run, events)
    }

    /// Prepares a run whose calls make no events and read no kernel views: the stream
    /// only ends when the run does (a `quiet` Play).
    pub(crate) fn prepare_quiet(
        scenario: &Scenario,
        policy: Arc<Policy>,
        network: &RunNetwork,
    ) -> (Self, RunItems) {
        let (sink, events) = EventSink::unwatched_stream();
        (
            Self::prepare_with_sink(scenario, policy, sink, network).0,
            events,
        )
    }

    /// The run, and its loopback address (whose packets are its own on the machine's
    /// loopback).
    fn prepare_with_sink(
        scenario: &Scenario,
        policy: Arc<Policy>,
        sink: EventSink,
        network: &RunNetwork,
    ) -> (Self, Ipv4Addr) {
        let places = Places::new();
        // A network made for this run alone has room for the tutorial's own address; a
        // shared one (the machine's) gives each run an address of its own.
        let alone = network.is_for_one_run();
        let setup = RunSetup {
            network: network.clone(),
            host: if alone {
                Ipv4Addr::LOCALHOST
            } else {
                LoopbackPool::shared().next_address()
            },
            alone,
            port: PORT,
            port6: OnceCell::new(),
            dir: places.dir().to_path_buf(),
            abstract_prefix: places.abstract_prefix().to_owned(),
        };
        let host = setup.host;
        (
            Self::with_plan(scenario.plan(&setup), places, policy, sink, network.clone()),
            host,
        )
    }

    /// Prepares a run in which an outside program plays one role: Socket Lab plays the
    /// others, on 127.0.0.1 and the port given (where the student's program looks), and the
    /// run may take as long as the outside program is given to come, and the usual time after.
    pub(crate) fn prepare_with_outside(
        scenario: &Scenario,
        peer: OutsidePeer,
        policy: Arc<Policy>,
    ) -> Result<(Self, RunItems), NoOutsideRole> {
        // The outside program is on the machine's network, so the run is too.
        // Not captured on the machine's loopback even where it could be: a packet socket
        // there runs its filter on every packet of the machine's loopback, so a lab whose
        // students each meet their own program would pay that once a run for every packet
        // of every run (measured: 200 such sessions' p99 from 0.5 to 230 ms).
        let network = RunNetwork::uncaptured(
            "this run meets a program outside Socket Lab, on the machine's own network, where \
             Socket Lab captures only the runs it plays on both sides",
        );
        Self::prepare_with_outside_in(scenario, peer, policy, network)
    }

    /// Like [`Run::prepare_with_outside`], in `network`, where the outside program must be to
    /// meet the run: `backend bench` opens its own client's socket in a network made for the
    /// run, to measure what capture costs an echo's events (`bench/capture_echo.rs`).
    pub(crate) fn prepare_with_outside_in(
        scenario: &Scenario,
        peer: OutsidePeer,
        policy: Arc<Policy>,
        network: RunNetwork,
    ) -> Result<(Self, RunItems), NoOutsideRole> {
        if !scenario.outside.contains(&peer.role.role()) {
            return Err(NoOutsideRole {
                scenario: scenario.id,
                role: peer.role.role(),
            });
        }
        let places = Places::new();
        let setup = RunSetup {
            network: network.clone(),
            host: Ipv4Addr::LOCALHOST,
            // The outside program shares the network with the run, and on the machine's
            // network with every other program.
            alone: false,
            port: peer.port,
            port6: OnceCell::new(),
            dir: places.dir().to_path_buf(),
            abstract_prefix: places.abstract_prefix().to_owned(),
        };
        let mut plan = scenario.plan(&setup);
        plan.leave_to_outside(peer.role.role(), &setup.server());
        let (sink, events) = EventSink::new(policy.limits().event_queue);
        let mut run = Self::with_plan(plan, places, policy, sink, network);
        run.lab = run.lab.outside_facing();
        run.capture = run.lab.network().attach(run.lab.sink(), None);
        // The tutorial's exchange takes milliseconds once the peer is there, so the time the
        // peer is given is, in practice, the time it has to come.
        let reason = match peer.role {
            Outside::Client => format!(
                "no outside client connected to 127.0.0.1:{} and finished within {} s",
                peer.port,
                peer.timeout.as_secs_f64()
            ),
            Outside::Server => format!(
                "no outside server listened on 127.0.0.1:{} and finished within {} s",
                peer.port,
                peer.timeout.as_secs_f64()
            ),
        };
        run.limit = Some((peer.timeout, reason));
        Ok((run, events))
    }

    fn with_plan(
        plan: Plan,
        places: Places,
        policy: Arc<Policy>,
        sink: EventSink,
        network: RunNetwork,
    ) -> Self {
        Run {
            plan,
            unix_dir: places.dir().to_string_lossy().into_owned(),
            lab: Lab::new(sink, places, policy, network),
            gate: None,
            limit: None,
            capture: None,
        }
    }

    /// Makes the run pause before each call; returns the gate that lets calls through. The
    /// run owns the gate: once it ends, the gate is gone.
    pub(crate) fn pause_before_calls(&mut self) -> std::sync::Weak<Gate> {
        let gate = Arc::new(Gate::default());
        let weak = Arc::downgrade(&gate);
        self.gate = Some(gate);
        weak
    }

    /// The run's directory for Unix socket files.
    pub(crate) fn unix_dir(&self) -> &str {
        &self.unix_dir
    }

    /// Each role's program, with this run's addresses in it.
    pub(crate) fn programs(&self) -> Vec<RoleProgram> {
        self.plan.programs()
    }

    /// Plays the run to its end, then closes every socket it still holds.
    pub(crate) async fn play(self) -> RunOutcome {
        let outcome = scenario::play(&self.plan, &self.lab, self.gate.as_deref(), self.limit).await;
        let network = self.lab.network().clone();
        // Dropping the lab closes its sockets (their last packets leave as they close) and
        // its event sender; the capture then reads those packets and lets go of the sender
        // too, which ends the receiver.
        drop(self.lab);
        if let Some(capture) = self.capture {
            capture.finish();
        }
        // Ending a network made for this run alone joins its capture thread: done on a
        // thread of its own, so that the run's end does not wait for it.
        if network.is_for_one_run() {
            tokio::task::spawn_blocking(move || drop(network));
        }
        outcome
    }
}

/// A whole run as data: its events, its packets, whether they were captured, its end.
#[derive(Debug)]
pub struct Recording {
    /// Every event, in `seq` order.
    pub events: Vec<Event>,
    /// Every packet kept, in `seq` order.
    pub packets: Vec<shared::Packet>,
    /// The capture's final state (whether packets were captured, and what was not kept).
    pub capture: shared::Capture,
    /// How the run ended.
    pub outcome: RunOutcome,
}

/// Plays a scenario to its end and collects its events: the whole run as data, for `trace`
/// and for tests.
/// Plays a scenario to its end and collects its events, on the machine's network with
/// nothing captured: `backend bench` compares it with a run nobody watches, on the same.
pub async fn record(scenario_id: &str) -> Result<(Vec<Event>, RunOutcome), UnknownScenario> {
    record_in(
        scenario_id,
        &RunNetwork::uncaptured("a recording of events alone"),
    )
    .await
    .map(|recording| (recording.events, recording.outcome))
}

/// Plays a scenario to its end in a network of its own and collects its events and packets.
pub async fn record_all(scenario_id: &str) -> Result<Recording, UnknownScenario> {
    let scenario =
        scenario::find(scenario_id).ok_or_else(|| UnknownScenario(scenario_id.to_owned()))?;
    let network = RunNetwork::own_for_one_run();
    let (run, events) = Run::prepare(scenario, recording_policy(), &network);
    Ok(collect(run, events).await)
}

/// Plays a scenario to its end in `network` and collects its events and packets (the
/// bench compares capture on and off with it).
pub(crate) async fn record_in(
    scenario_id: &str,
    network: &RunNetwork,
) -> Result<Recording, UnknownScenario> {
    let scenario =
        scenario::find(scenario_id).ok_or_else(|| UnknownScenario(scenario_id.to_owned()))?;
    let (run, events) = Run::prepare(scenario, recording_policy(), network);
    Ok(collect(run, events).await)
}

/// Plays a scenario with nobody watching: the same calls on the same kind of lab, with no
/// events and no kernel views read. `backend bench` compares it with a watched run.
pub async fn play_unwatched(scenario_id: &str) -> Result<RunOutcome, UnknownScenario> {
    let scenario =
        scenario::find(scenario_id).ok_or_else(|| UnknownScenario(scenario_id.to_owned()))?;
    let (run, _) = Run::prepare_with_sink(
        scenario,
        Arc::new(Policy::default()),
        EventSink::unwatched(),
        &RunNetwork::uncaptured("nobody watches"),
    );
    Ok(run.play().await)
}

/// Like [`record`], with an outside program playing one role.
pub async fn record_with_outside(
    scenario_id: &str,
    peer: OutsidePeer,
) -> Result<Recording, RecordError> {
    let scenario =
        scenario::find(scenario_id).ok_or_else(|| UnknownScenario(scenario_id.to_owned()))?;
    let (run, events) = Run::prepare_with_outside(scenario, peer, recording_policy())?;
    Ok(collect(run, events).await)
}

/// The policy of a recorded run (`trace`): a page's, with a queue that holds a whole run's
/// events and packets. The run and its reader share one task, and a run whose calls never
/// wait (a client's 100 KB already in the kernel's queue) makes them all before the reader
/// reads; a page's queue would summarise some, which a recording must not.
fn recording_policy() -> Arc<Policy> {
    Arc::new(Policy::new(crate::limits::Limits {
        event_queue: 1 << 16,
        ..crate::limits::Limits::default()
    }))
}

async fn collect(run: Run, mut events: RunItems) -> Recording {
    let collect = async {
        let mut all = Vec::new();
        let mut packets = Vec::new();
        let mut capture = shared::Capture::default();
        while let Some(item) = events.recv().await {
            match item {
                RunItem::Event(event) => all.push(event),
                RunItem::Packet(packet) => packets.push(packet),
                RunItem::Capture(state) => capture = state,
                RunItem::Paused(_) | RunItem::Program(_) => {}
                // This reader keeps up with any run; should it ever fall behind, say so.
                RunItem::Dropped(dropped) => tracing::warn!(
                    count = dropped.count,
                    first_seq = dropped.first_seq,
                    "events were dropped"
                ),
            }
        }
        (all, packets, capture)
    };
    let (outcome, (events, packets, capture)) = tokio::join!(run.play(), collect);
    Recording {
        events,
        packets,
        capture,
        outcome,
    }
}

/// Why a run with an outside program could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No such scenario.
    #[error(transparent)]
    UnknownScenario(#[from] UnknownScenario),
    /// The scenario has no role an outside program can play.
    #[error(transparent)]
    NoOutsideRole(#[from] NoOutsideRole),
}

/// The scenario does not let an outside program play that role.
#[derive(Debug, thiserror::Error)]
#[error("in '{scenario}', an outside program cannot play the {role}; scenarios that allow it: {allowed}", allowed = scenario::CATALOG.iter().filter(|s| !s.outside.is_empty()).map(|s| s.id).collect::<Vec<_>>().join(", "))]
pub struct NoOutsideRole {
    /// The scenario.
    pub scenario: &'static str,
    /// The role asked for.
    pub role: &'static str,
}

/// No scenario has the id asked for.
#[derive(Debug, thiserror::Error)]
#[error("no scenario is called '{0}' (`backend scenarios` lists them)")]
pub struct UnknownScenario(pub String);
