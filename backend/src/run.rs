//! One run of a scenario: a fresh lab on a fresh loopback address, its events, its end.
//!
//! Both front doors use this: the WebSocket session (which forwards events in batches) and
//! `backend trace` (which prints them).

use std::sync::Arc;

use shared::{Event, RoleProgram, RunOutcome};
use tokio::sync::mpsc;

use std::net::{Ipv6Addr, SocketAddr, TcpListener};

use crate::lab::{EventSink, Lab, Places, RunItem};
use crate::loopback::LoopbackPool;
use crate::scenario::{self, Gate, PORT, Plan, RunSetup, Scenario};

/// A run ready to play.
#[derive(Debug)]
pub(crate) struct Run {
    plan: Plan,
    lab: Lab,
    unix_dir: String,
    /// Present when the run pauses before each call.
    gate: Option<Arc<Gate>>,
}

impl Run {
    /// Prepares a run of `scenario` on the next loopback address; its events will come out of
    /// the returned receiver, which ends when the run has ended and its sockets are closed.
    pub(crate) fn prepare(scenario: &Scenario) -> (Self, mpsc::UnboundedReceiver<RunItem>) {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let places = Places::new();
        let setup = RunSetup {
            host: LoopbackPool::shared().next_address(),
            port6: free_ipv6_port(),
            dir: places.dir().to_path_buf(),
            abstract_prefix: places.abstract_prefix().to_owned(),
        };
        let run = Run {
            plan: scenario.plan(&setup),
            unix_dir: places.dir().to_string_lossy().into_owned(),
            lab: Lab::new(EventSink::new(events_tx), places),
            gate: None,
        };
        (run, events_rx)
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
        let outcome = scenario::play(&self.plan, &self.lab, self.gate.as_deref()).await;
        // Dropping the lab closes its sockets and its event sender, which ends the receiver.
        drop(self.lab);
        outcome
    }
}

/// A port on `::1` that the kernel says is free now: bound to port 0, read, released. A
/// listener that never connected leaves nothing behind, so the port can be bound again at
/// once. Without IPv6 on loopback the tutorial's port is used, and the run shows the kernel's
/// error for it.
fn free_ipv6_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)))
        .and_then(|listener| listener.local_addr())
        .map_or(PORT, |address| address.port())
}

/// Plays a scenario to its end and collects its events: the whole run as data, for `trace`
/// and for tests.
pub async fn record(scenario_id: &str) -> Result<(Vec<Event>, RunOutcome), UnknownScenario> {
    let scenario =
        scenario::find(scenario_id).ok_or_else(|| UnknownScenario(scenario_id.to_owned()))?;
    let (run, mut events) = Run::prepare(scenario);
    let collect = async {
        let mut all = Vec::new();
        while let Some(item) = events.recv().await {
            if let RunItem::Event(event) = item {
                all.push(event);
            }
        }
        all
    };
    let (outcome, events) = tokio::join!(run.play(), collect);
    Ok((events, outcome))
}

/// No scenario has the id asked for.
#[derive(Debug, thiserror::Error)]
#[error("no scenario is called '{0}' (`backend scenarios` lists them)")]
pub struct UnknownScenario(pub String);
