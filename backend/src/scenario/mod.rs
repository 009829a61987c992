//! Scenarios: the tutorial's programs, as steps performed on a [`Lab`].
//!
//! A scenario is a set of roles (programs), each a list of [`Step`]s: one socket call each,
//! tied to the line of the role's Python program that makes it. [`play`] runs the roles
//! concurrently, as two programs would run, each waiting for its cue: a client starts once
//! the server is waiting in `accept()`, as a student starts `client.py` after `server.py`.

mod simple;

use std::net::Ipv4Addr;
use std::time::Duration;

use futures_util::future::join_all;
use shared::{Call, RoleProgram, RunOutcome, ScenarioInfo};
use tokio::sync::watch;

use crate::lab::{Caller, Lab};

/// The longest a run may take before it is stopped. The tutorial's programs take
/// milliseconds; a run that takes this long is stuck in a blocking call.
pub(crate) const MAX_RUN_TIME: Duration = Duration::from_secs(30);

/// A scenario the backend can play.
#[derive(Debug)]
pub(crate) struct Scenario {
    /// Its id, as in `?scenario=` links.
    pub(crate) id: &'static str,
    /// A short title.
    pub(crate) title: &'static str,
    /// What it teaches.
    pub(crate) summary: &'static str,
    /// Builds the run's plan for the addresses it was given.
    plan: fn(&RunSetup) -> Plan,
}

impl Scenario {
    /// The scenario as the protocol describes it.
    pub(crate) fn info(&self) -> ScenarioInfo {
        ScenarioInfo {
            id: self.id.to_owned(),
            title: self.title.to_owned(),
            summary: self.summary.to_owned(),
        }
    }

    /// The run's plan, with the run's addresses written into its steps and programs.
    pub(crate) fn plan(&self, setup: &RunSetup) -> Plan {
        (self.plan)(setup)
    }
}

/// Every scenario, in the order the page lists them.
pub(crate) static CATALOG: &[Scenario] = &[simple::SCENARIO];

/// The scenario with this id.
pub(crate) fn find(id: &str) -> Option<&'static Scenario> {
    CATALOG.iter().find(|scenario| scenario.id == id)
}

/// The addresses a run may use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunSetup {
    /// The run's own loopback address, where its servers listen.
    pub(crate) host: Ipv4Addr,
}

/// A run's roles, ready to play.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) roles: Vec<RolePlan>,
}

impl Plan {
    /// Each role's program, for [`shared::ServerMessage::RunStarted`].
    pub(crate) fn programs(&self) -> Vec<RoleProgram> {
        self.roles
            .iter()
            .map(|role| RoleProgram {
                role: role.role.to_owned(),
                code: role.code.clone(),
            })
            .collect()
    }
}

/// One program of a scenario.
#[derive(Debug)]
pub(crate) struct RolePlan {
    /// The role's name, such as `server`.
    pub(crate) role: &'static str,
    /// The Python program that makes the same calls.
    pub(crate) code: String,
    /// When the program starts.
    pub(crate) start: Start,
    /// Its calls, in order.
    pub(crate) steps: Vec<Step>,
}

/// When a role's program starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Start {
    /// At once.
    Now,
    /// Once another role has entered one of its steps (or ended without reaching it).
    AfterEntered {
        /// The other role's index in the plan.
        role: usize,
        /// The step's index in that role's steps.
        step: usize,
    },
}

/// One call of a role's program.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    /// The program's line that makes the call, from 1.
    pub(crate) line: u32,
    /// The variable holding the socket the call is made on, such as `s`.
    pub(crate) socket: &'static str,
    /// The call.
    pub(crate) call: Call,
    /// For `accept`, the variable that receives the new connection, such as `con`.
    pub(crate) assigns: Option<&'static str>,
}

/// How far a role has got, for the roles that wait for it.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    entered: usize,
    done: bool,
}

/// Plays a plan on a lab, every role concurrently, and says how the run ended.
///
/// A role whose call fails stops there, as a Python program stops at an uncaught `OSError`;
/// when a role's program ends, the kernel closes the sockets it still holds.
pub(crate) async fn play(plan: &Plan, lab: &Lab) -> RunOutcome {
    let progress: Vec<watch::Sender<Progress>> = plan
        .roles
        .iter()
        .map(|_| watch::Sender::new(Progress::default()))
        .collect();
    let roles = plan
        .roles
        .iter()
        .enumerate()
        .map(|(index, role)| play_role(lab, role, &progress[index], &progress));
    match tokio::time::timeout(MAX_RUN_TIME, join_all(roles)).await {
        Ok(_) => RunOutcome::Completed,
        Err(_) => RunOutcome::Cancelled {
            reason: format!(
                "the run took longer than {} seconds and was stopped",
                MAX_RUN_TIME.as_secs()
            ),
        },
    }
}

async fn play_role(
    lab: &Lab,
    role: &RolePlan,
    own: &watch::Sender<Progress>,
    all: &[watch::Sender<Progress>],
) {
    if let Start::AfterEntered { role: other, step } = role.start
        && let Some(other) = all.get(other)
    {
        let mut cue = other.subscribe();
        // An error means the other role's sender is gone, which cannot happen while
        // `play` holds it; either way there is nothing more to wait for.
        let _ = cue
            .wait_for(|progress| progress.entered > step || progress.done)
            .await;
    }
    for (index, step) in role.steps.iter().enumerate() {
        let endpoint = format!("{}.{}", role.role, step.socket);
        let conn_endpoint = step.assigns.map(|name| format!("{}.{name}", role.role));
        let caller = Caller {
            role: role.role,
            endpoint: &endpoint,
            line: Some(step.line),
        };
        let on_enter = || own.send_modify(|progress| progress.entered = index + 1);
        let outcome = lab
            .perform(
                &caller,
                step.call.clone(),
                conn_endpoint.as_deref(),
                on_enter,
            )
            .await;
        if outcome.is_err() {
            break;
        }
    }
    lab.exit(role.role);
    own.send_modify(|progress| progress.done = true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_ids_are_unique_and_findable() {
        for scenario in CATALOG {
            assert_eq!(find(scenario.id).map(|found| found.id), Some(scenario.id));
        }
        assert!(find("no-such-scenario").is_none());
    }

    /// Every step must point at the line of its program that makes its call, or the page
    /// highlights the wrong line.
    #[test]
    fn every_step_points_at_a_line_that_makes_its_call() {
        let setup = RunSetup {
            host: Ipv4Addr::new(127, 64, 0, 1),
        };
        for scenario in CATALOG {
            for role in scenario.plan(&setup).roles {
                let lines: Vec<&str> = role.code.lines().collect();
                for step in &role.steps {
                    let line = lines.get(step.line as usize - 1).unwrap_or_else(|| {
                        panic!("{}: line {} is past the end", role.role, step.line)
                    });
                    let name = step.call.name();
                    let call = if name == "socket" { "socket(" } else { name };
                    assert!(
                        line.contains(call),
                        "{} {}: line {} is {line:?}, which does not call {name}",
                        scenario.id,
                        role.role,
                        step.line
                    );
                }
            }
        }
    }
}
