//! One run of a scenario: a fresh lab on a fresh loopback address, its events, its end.
//!
//! Both front doors use this: the WebSocket session (which forwards events in batches) and
//! `backend trace` (which prints them).

use shared::{Event, RoleProgram, RunOutcome};
use tokio::sync::mpsc;

use crate::lab::{EventSink, Lab};
use crate::loopback::LoopbackPool;
use crate::scenario::{self, Plan, RunSetup, Scenario};

/// A run ready to play.
#[derive(Debug)]
pub(crate) struct Run {
    plan: Plan,
    lab: Lab,
}

impl Run {
    /// Prepares a run of `scenario` on the next loopback address; its events will come out of
    /// the returned receiver, which ends when the run has ended and its sockets are closed.
    pub(crate) fn prepare(scenario: &Scenario) -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let setup = RunSetup {
            host: LoopbackPool::shared().next_address(),
        };
        let run = Run {
            plan: scenario.plan(&setup),
            lab: Lab::new(EventSink::new(events_tx)),
        };
        (run, events_rx)
    }

    /// Each role's program, with this run's addresses in it.
    pub(crate) fn programs(&self) -> Vec<RoleProgram> {
        self.plan.programs()
    }

    /// Plays the run to its end, then closes every socket it still holds.
    pub(crate) async fn play(self) -> RunOutcome {
        let outcome = scenario::play(&self.plan, &self.lab).await;
        // Dropping the lab closes its sockets and its event sender, which ends the receiver.
        drop(self.lab);
        outcome
    }
}

/// Plays a scenario to its end and collects its events: the whole run as data, for `trace`
/// and for tests.
pub async fn record(scenario_id: &str) -> Result<(Vec<Event>, RunOutcome), UnknownScenario> {
    let scenario =
        scenario::find(scenario_id).ok_or_else(|| UnknownScenario(scenario_id.to_owned()))?;
    let (run, mut events) = Run::prepare(scenario);
    let collect = async {
        let mut all = Vec::new();
        while let Some(event) = events.recv().await {
            all.push(event);
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
