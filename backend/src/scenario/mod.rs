//! Scenarios: the tutorial's programs, as steps performed on a [`Lab`].
//!
//! A scenario is a set of roles (programs), each a list of [`Step`]s: one socket call each,
//! tied to the line of the role's Python program that makes it. [`play`] runs the roles
//! concurrently, as two programs would run, each waiting for its cue: a client starts once
//! the server is waiting in `accept()`, as a student starts `client.py` after `server.py`.

mod pace;
mod simple;
mod tcp;
mod udp;
mod unix;

use std::cell::OnceCell;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::join_all;
use shared::{Bytes, Call, ReturnValue, RoleProgram, RunOutcome, ScenarioInfo, SockAddr};
use tokio::sync::watch;

use crate::lab::{Caller, Lab};

pub(crate) use pace::Gate;

/// The longest a run that pauses before each call may take: a student thinks between calls.
pub(crate) const MAX_PAUSED_RUN_TIME: Duration = Duration::from_secs(60 * 60);

/// The tutorial's port.
pub(crate) const PORT: u16 = 12345;

/// A scenario the backend can play.
#[derive(Debug)]
pub(crate) struct Scenario {
    /// Its id, as in `?scenario=` links.
    pub(crate) id: &'static str,
    /// A short title.
    pub(crate) title: &'static str,
    /// What it teaches.
    pub(crate) summary: &'static str,
    /// The roles that a program outside Socket Lab may play (a student's own client or
    /// server), while Socket Lab plays the others.
    pub(crate) outside: &'static [&'static str],
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
            outside_roles: self.outside.iter().map(|role| (*role).to_owned()).collect(),
        }
    }

    /// The run's plan, with the run's addresses written into its steps and programs.
    pub(crate) fn plan(&self, setup: &RunSetup) -> Plan {
        (self.plan)(setup)
    }
}

/// Every scenario, in the order the page lists them: from the tutorial's first programs to
/// what goes wrong.
pub(crate) static CATALOG: &[Scenario] = &[
    simple::SIMPLE_SERVER_CLIENT,
    tcp::TCP_ECHO,
    udp::UDP_ECHO,
    unix::UNIX_STREAM,
    unix::UNIX_DGRAM,
    tcp::IPV6_ECHO,
    tcp::MULTIPLE_CLIENTS,
    tcp::BYTE_STREAM,
    udp::DATAGRAM_BOUNDARIES,
    tcp::HALF_CLOSE,
    tcp::CONNECTION_REFUSED,
    tcp::ADDRESS_IN_USE,
    tcp::RESET,
    tcp::NONBLOCKING,
    udp::PORT_UNREACHABLE,
];

/// The scenario with this id.
pub(crate) fn find(id: &str) -> Option<&'static Scenario> {
    CATALOG.iter().find(|scenario| scenario.id == id)
}

/// The places a run may use, written into its programs.
#[derive(Clone, Debug)]
pub(crate) struct RunSetup {
    /// The network the run's IP sockets are opened in.
    pub(crate) network: crate::network::RunNetwork,
    /// The run's own loopback address, where its IPv4 servers listen: 127.0.0.1 in a
    /// network the run has to itself, else an address of 127.64.0.0/10 no other run has.
    pub(crate) host: Ipv4Addr,
    /// Whether the run has its network to itself (made for it alone): its programs are then
    /// written with the tutorial's own addresses, and no line of Socket Lab's says why an
    /// address is another.
    pub(crate) alone: bool,
    /// The port its IPv4 servers listen on: the tutorial's, unless an outside program asks
    /// for another.
    pub(crate) port: u16,
    /// A port on `::1` that was free when the run's plan first asked for it (IPv6 has one
    /// loopback address, so runs cannot each have their own as they do in 127.64.0.0/10).
    /// Only a scenario on IPv6 asks, so only its runs look for one.
    pub(crate) port6: OnceCell<u16>,
    /// The run's own directory for Unix socket files.
    pub(crate) dir: PathBuf,
    /// The run's own prefix in the abstract namespace.
    pub(crate) abstract_prefix: String,
}

impl RunSetup {
    /// The run's port on `::1`: the tutorial's in a network the run has to itself, else one
    /// the kernel has free, found the first time it is asked for.
    pub(crate) fn port6(&self) -> u16 {
        *self.port6.get_or_init(|| {
            if self.alone {
                PORT
            } else {
                free_ipv6_port(&self.network)
            }
        })
    }

    /// Whether the server's address is one the tutorial's programs use: in a network the run
    /// has to itself, or 127.0.0.1, where a run meets an outside program.
    fn is_the_tutorials(&self) -> bool {
        self.alone || self.host == Ipv4Addr::LOCALHOST
    }

    /// The comment on the line where a server names its own address: why the address is not
    /// the tutorial's, where it is not.
    pub(crate) fn own_address_note(&self) -> &'static str {
        if self.is_the_tutorials() {
            ""
        } else {
            "  # Socket Lab: this run's own loopback address"
        }
    }

    /// The comment on the line where a client names the server's address.
    pub(crate) fn server_address_note(&self) -> &'static str {
        if self.is_the_tutorials() {
            ""
        } else {
            "  # Socket Lab: the server's address in this run"
        }
    }

    /// The IPv4 address `(host, PORT)` of the run's server.
    pub(crate) fn server(&self) -> SockAddr {
        SockAddr::Inet {
            host: self.host,
            port: self.port,
        }
    }

    /// A path in the run's directory, as a Unix address.
    pub(crate) fn path(&self, name: &str) -> SockAddr {
        SockAddr::Unix {
            path: self.path_text(name),
            r#abstract: false,
        }
    }

    /// A path in the run's directory, as text for the programs.
    pub(crate) fn path_text(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

/// A port on `::1` that the kernel says is free now: bound to port 0, read, released. A
/// listener that never connected leaves nothing behind, so the port can be bound again at
/// once. Without IPv6 on loopback the tutorial's port is used, and the run shows the kernel's
/// error for it.
fn free_ipv6_port(network: &crate::network::RunNetwork) -> u16 {
    network
        .ip_socket(libc::AF_INET6, libc::SOCK_STREAM | libc::SOCK_CLOEXEC)
        .map(socket2::Socket::from)
        .and_then(|socket| {
            socket.bind(&SocketAddr::from((Ipv6Addr::LOCALHOST, 0)).into())?;
            socket.local_addr()
        })
        .ok()
        .and_then(|address| address.as_socket())
        .map_or(PORT, |address| address.port())
}

/// A run's roles, ready to play.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) roles: Vec<RolePlan>,
    /// The programs of roles left to outside programs: what the student should run.
    pub(crate) outside: Vec<RoleProgram>,
}

impl Plan {
    /// Leaves `role` to an outside program: its steps are not played, and a role that waited
    /// for it to be in `accept` waits instead until something listens at `server`.
    pub(crate) fn leave_to_outside(&mut self, role: &str, server: &SockAddr) {
        let (outside, own): (Vec<RolePlan>, Vec<RolePlan>) = std::mem::take(&mut self.roles)
            .into_iter()
            .partition(|plan| plan.role == role);
        self.roles = own;
        self.outside
            .extend(outside.into_iter().map(|plan| RoleProgram {
                file: None,
                role: plan.role.to_owned(),
                code: plan.code,
                outside: true,
            }));
        for plan in &mut self.roles {
            if plan.start.is_some_and(|cue| cue.role == role) {
                plan.start = None;
                plan.waits_for_listener = Some(server.clone());
            }
            for step in &mut plan.steps {
                if step.after.is_some_and(|cue| cue.role == role) {
                    step.after = None;
                }
            }
        }
    }

    /// Each role's program, for [`shared::ServerMessage::RunStarted`].
    pub(crate) fn programs(&self) -> Vec<RoleProgram> {
        self.roles
            .iter()
            .map(|role| RoleProgram {
                file: None,
                role: role.role.to_owned(),
                code: role.code.clone(),
                outside: false,
            })
            .chain(self.outside.iter().cloned())
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
    /// When the program starts: at once, or on another role's cue (a student starts
    /// `client.py` once `server.py` waits in `accept`).
    pub(crate) start: Option<Cue>,
    /// Its calls, in order.
    pub(crate) steps: Vec<Step>,
    /// Before it starts, wait until a server listens here (an outside program's).
    pub(crate) waits_for_listener: Option<SockAddr>,
    /// A `while True:` loop over some steps, left when its first step (a `recv`) returns
    /// end of stream: what an echo server does, however much its peer sends.
    pub(crate) loop_: Option<Loop>,
}

/// Steps `first..=last` of a role, repeated until `first` receives end of stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loop {
    pub(crate) first: usize,
    pub(crate) last: usize,
}

/// The most times a loop goes round: a peer that never stops sending still has an end.
const MAX_LOOP_ROUNDS: usize = 100_000;

impl RolePlan {
    /// A role running `code`; steps name their line by a piece of its text.
    pub(crate) fn new(role: &'static str, code: String) -> Self {
        RolePlan {
            role,
            code,
            start: None,
            steps: Vec::new(),
            waits_for_listener: None,
            loop_: None,
        }
    }

    /// Starts the role on a cue.
    pub(crate) fn starts(mut self, cue: Cue) -> Self {
        self.start = Some(cue);
        self
    }

    /// Adds a call made on `socket` by the one line of the program that contains `marker`,
    /// and returns it for further settings. (A line that runs again, in a loop, is named
    /// again for each time.) An unknown marker gives line 0, which the catalog's tests
    /// refuse.
    pub(crate) fn step(&mut self, marker: &str, socket: &'static str, call: Call) -> &mut Step {
        let mut lines = self
            .code
            .lines()
            .enumerate()
            .filter(|(_, line)| line.contains(marker));
        let line = match (lines.next(), lines.next()) {
            (Some((index, _)), None) => u32::try_from(index + 1).unwrap_or(0),
            _ => 0,
        };
        self.steps.push(Step {
            line,
            socket,
            call,
            assigns: None,
            after: None,
            echo: false,
            handled: false,
        });
        let last = self.steps.len() - 1;
        &mut self.steps[last]
    }

    /// The opening of every server: `s = socket.socket(family, type)`, `s.bind(address)` and,
    /// for a stream, `s.listen(backlog)`. The program must have those three lines.
    pub(crate) fn serves(&mut self, socket: Call, address: &SockAddr, backlog: Option<i32>) {
        self.step("s = socket.socket", "s", socket);
        self.step(
            "s.bind",
            "s",
            Call::Bind {
                address: address.clone(),
            },
        );
        if let Some(backlog) = backlog {
            self.step("s.listen", "s", Call::Listen { backlog });
        }
    }

    /// `con, addr = s.accept()`; returns the step's index, for the client's cue.
    pub(crate) fn accepts(&mut self) -> usize {
        self.step("s.accept()", "s", Call::Accept).assigns("con");
        self.last()
    }

    /// The opening of every client: `s = socket.socket(...)` and `s.connect(address)`.
    pub(crate) fn connects(&mut self, socket: Call, address: &SockAddr) {
        self.step("s = socket.socket", "s", socket);
        self.step(
            "s.connect",
            "s",
            Call::Connect {
                address: address.clone(),
            },
        );
    }

    /// The index of the last step added, for cues.
    pub(crate) fn last(&self) -> usize {
        self.steps.len().saturating_sub(1)
    }
}

/// A point in another role's program.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cue {
    /// The other role.
    pub(crate) role: &'static str,
    /// The index of the step in that role's steps.
    pub(crate) step: usize,
    /// Whether to wait for the step to return, not only to be entered.
    pub(crate) returned: bool,
}

impl Cue {
    /// Once `role` has entered its step number `step` (or ended without reaching it).
    pub(crate) fn entered(role: &'static str, step: usize) -> Self {
        Cue {
            role,
            step,
            returned: false,
        }
    }

    /// Once `role`'s step number `step` has returned (or the role ended without it).
    pub(crate) fn returned(role: &'static str, step: usize) -> Self {
        Cue {
            role,
            step,
            returned: true,
        }
    }
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
    /// A cue to wait for before the call: what the Python program waits for with `input()`
    /// or `time.sleep()`, played exactly.
    pub(crate) after: Option<Cue>,
    /// Sends what the role last received (to whom it came from, for `sendto`) instead of the
    /// call's own bytes: an echo server's `sendall(data)`.
    pub(crate) echo: bool,
    /// The program catches this call's error (`try`/`except`) and goes on; otherwise an error
    /// ends the program, as an uncaught exception does.
    pub(crate) handled: bool,
}

impl Step {
    /// The call assigns its new connection to this variable.
    pub(crate) fn assigns(&mut self, variable: &'static str) -> &mut Self {
        self.assigns = Some(variable);
        self
    }

    /// The call waits for a cue first.
    pub(crate) fn after(&mut self, cue: Cue) -> &mut Self {
        self.after = Some(cue);
        self
    }

    /// The call sends back what the role last received.
    pub(crate) fn echo(&mut self) -> &mut Self {
        self.echo = true;
        self
    }

    /// The program catches the call's error and goes on.
    pub(crate) fn handled(&mut self) -> &mut Self {
        self.handled = true;
        self
    }
}

/// Bytes from a string, for the programs' messages.
pub(crate) fn bytes(text: &str) -> Bytes {
    Bytes(text.as_bytes().to_vec())
}

/// How far a role has got, for the roles that wait for it.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    entered: usize,
    returned: usize,
    done: bool,
    /// The step the role is at now, and whether its call has been made: what a run stopped
    /// for taking too long says of each role. (Cues read only the three fields above.)
    at: usize,
    in_call: bool,
}

/// Plays a plan on a lab, every role concurrently, and says how the run ended.
///
/// A role whose call fails stops there, as a Python program stops at an uncaught `OSError`,
/// unless the program handles that error; when a role's program ends, the kernel closes the
/// sockets it still holds.
pub(crate) async fn play(
    plan: &Plan,
    lab: &Lab,
    gate: Option<&Gate>,
    limit: Option<(Duration, String)>,
) -> RunOutcome {
    let progress: Vec<watch::Sender<Progress>> = plan
        .roles
        .iter()
        .map(|_| watch::Sender::new(Progress::default()))
        .collect();
    let board = Board {
        plan,
        progress: &progress,
        gate,
    };
    let roles = plan
        .roles
        .iter()
        .enumerate()
        .map(|(index, role)| play_role(lab, role, &progress[index], &board));
    let (limit, reason) = limit.unwrap_or_else(|| {
        let limit = if gate.is_some() {
            MAX_PAUSED_RUN_TIME
        } else {
            lab.limits().max_run_time()
        };
        // The tutorial's programs take milliseconds; a run that takes this long is stuck in
        // a blocking call.
        let reason = format!(
            "the run took longer than {} seconds, this server's limit (--max-run-time), and \
             was stopped",
            limit.as_secs()
        );
        (limit, reason)
    });
    match tokio::time::timeout(limit, join_all(roles)).await {
        Ok(_) => RunOutcome::Completed,
        Err(_) => RunOutcome::Cancelled {
            reason: format!("{reason}: {}", where_roles_stopped(plan, &progress, lab)),
        },
    }
}

/// Where each unfinished role of a run that took too long was, in the program's words, with
/// what the kernel then held for a call that waits: `client waits in recvfrom() (line 5),
/// with 0 bytes in client.s's receive queue`.
fn where_roles_stopped(plan: &Plan, progress: &[watch::Sender<Progress>], lab: &Lab) -> String {
    plan.roles
        .iter()
        .zip(progress)
        .filter_map(|(role, progress)| {
            let progress = *progress.borrow();
            let step = role.steps.get(progress.at).filter(|_| !progress.done)?;
            let how = if progress.in_call {
                "waits in"
            } else {
                "has yet to call"
            };
            let mut text = format!(
                "{} {how} {}() (line {})",
                role.role,
                step.call.name(),
                step.line
            );
            // The socket is named after the program's variable; a variable that accept()
            // filled again names the newest connection (`server.con2`).
            if progress.in_call
                && let Some(view) = lab.view_of_newest(&format!("{}.{}", role.role, step.socket))
            {
                text.push_str(&queue_text(&view));
            }
            Some(text)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a socket's queues held, as the kernel reported them: `, with 0 bytes in
/// client.s's receive queue`.
fn queue_text(view: &shared::SocketView) -> String {
    let plural = |count: u32| if count == 1 { "" } else { "s" };
    match (view.accept_queue, view.recv_queue) {
        (Some(waiting), _) => format!(
            ", with {waiting} connection{} in {}'s accept queue",
            plural(waiting),
            view.endpoint
        ),
        (None, Some(bytes)) => format!(
            ", with {bytes} byte{} in {}'s receive queue",
            plural(bytes),
            view.endpoint
        ),
        (None, None) => String::new(),
    }
}

/// Every role's progress, for cues.
struct Board<'a> {
    plan: &'a Plan,
    progress: &'a [watch::Sender<Progress>],
    /// The user's go-ahead for each call, when the run pauses before each one.
    gate: Option<&'a Gate>,
}

impl Board<'_> {
    async fn wait(&self, cue: Cue) {
        let Some(index) = self
            .plan
            .roles
            .iter()
            .position(|role| role.role == cue.role)
        else {
            return;
        };
        let mut progress = self.progress[index].subscribe();
        // An error means the other role's sender is gone, which cannot happen while `play`
        // holds it; either way there is nothing more to wait for.
        let _ = progress
            .wait_for(|progress| {
                let reached = if cue.returned {
                    progress.returned
                } else {
                    progress.entered
                };
                reached > cue.step || progress.done
            })
            .await;
    }
}

/// What a role remembers between calls: what it last received, for an echo.
#[derive(Debug, Default)]
struct Memory {
    data: Bytes,
    from: Option<SockAddr>,
}

async fn play_role(lab: &Lab, role: &RolePlan, own: &watch::Sender<Progress>, board: &Board<'_>) {
    if let Some(cue) = role.start {
        board.wait(cue).await;
    }
    if let Some(server) = &role.waits_for_listener {
        wait_for_listener(server).await;
    }
    let mut memory = Memory::default();
    // Which endpoint each variable holds now: `con` is `server.con` after the first accept
    // and `server.con2` after the second, as the lab names each new connection.
    let mut variables: HashMap<&str, String> = HashMap::new();
    let mut index = 0;
    let mut rounds = 0;
    while let Some(step) = role.steps.get(index) {
        // Only for the record (see `where_roles_stopped`): no cue waits on it.
        own.send_if_modified(|progress| {
            progress.at = index;
            progress.in_call = false;
            false
        });
        if let Some(cue) = step.after {
            board.wait(cue).await;
        }
        let endpoint = variables
            .get(step.socket)
            .cloned()
            .unwrap_or_else(|| format!("{}.{}", role.role, step.socket));
        let conn_endpoint = step.assigns.map(|name| format!("{}.{name}", role.role));
        let caller = Caller {
            role: role.role,
            endpoint: &endpoint,
            line: Some(step.line),
        };
        let call = if step.echo {
            echo(&step.call, &memory)
        } else {
            step.call.clone()
        };
        if let Some(gate) = board.gate {
            let next = shared::NextCall {
                role: role.role.to_owned(),
                endpoint: endpoint.clone(),
                line: Some(step.line),
                call: call.clone(),
            };
            gate.pass(next, lab.sink()).await;
        }
        // Progress only grows, also when a loop goes round again, so cues stay met.
        let on_enter = || {
            own.send_modify(|progress| {
                progress.entered = progress.entered.max(index + 1);
                progress.in_call = true;
            });
        };
        let outcome = lab
            .perform(&caller, call, conn_endpoint.as_deref(), on_enter)
            .await;
        own.send_modify(|progress| progress.returned = progress.returned.max(index + 1));
        let mut next = index + 1;
        match outcome {
            Ok(result) => match result.value {
                ReturnValue::Received { data, from, .. } => {
                    // `while True: data = recv(); if not data: break`: end of stream leaves
                    // the loop.
                    if data.is_empty()
                        && let Some(lap) = role.loop_.filter(|lap| lap.first == index)
                    {
                        next = lap.last + 1;
                    }
                    memory = Memory { data, from };
                }
                ReturnValue::Accepted { endpoint, .. } => {
                    if let Some(variable) = step.assigns {
                        variables.insert(variable, endpoint);
                    }
                }
                _ => {}
            },
            Err(_) if step.handled => {}
            Err(_) => break,
        }
        if let Some(lap) = role
            .loop_
            .filter(|lap| lap.last == index && next == index + 1)
            && rounds < MAX_LOOP_ROUNDS
        {
            rounds += 1;
            next = lap.first;
        }
        index = next;
    }
    lab.exit(role.role);
    own.send_modify(|progress| progress.done = true);
}

/// How often a role that waits for an outside server looks for its listener.
const LISTENER_POLL: Duration = Duration::from_millis(100);

/// Waits until a TCP listener is bound to the server's port, as the kernel's connection table
/// shows: the outside server has started. (Nothing is sent to find out.)
async fn wait_for_listener(server: &SockAddr) {
    let Some(port) = server.port() else {
        return;
    };
    while !crate::lab::listening_on(port) {
        tokio::time::sleep(LISTENER_POLL).await;
    }
}

/// The call with the role's last received bytes (and sender) in place of its own.
fn echo(call: &Call, memory: &Memory) -> Call {
    match call {
        Call::Send { .. } => Call::Send {
            data: memory.data.clone(),
        },
        Call::Sendall { .. } => Call::Sendall {
            data: memory.data.clone(),
        },
        Call::Sendto { address, .. } => Call::Sendto {
            data: memory.data.clone(),
            address: memory.from.clone().unwrap_or_else(|| address.clone()),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_call_is_told_with_what_its_queue_held() {
        let view = |accept_queue, recv_queue| shared::SocketView {
            endpoint: "server.s".into(),
            state: shared::SocketState::Listen,
            recv_queue,
            send_queue: None,
            accept_queue,
            backlog: None,
            lingering: false,
            peer_closed: false,
        };
        assert_eq!(
            queue_text(&view(Some(1), Some(0))),
            ", with 1 connection in server.s's accept queue"
        );
        assert_eq!(
            queue_text(&view(None, Some(0))),
            ", with 0 bytes in server.s's receive queue"
        );
        assert_eq!(
            queue_text(&view(None, Some(1))),
            ", with 1 byte in server.s's receive queue"
        );
        assert_eq!(queue_text(&view(None, None)), "");
    }

    #[test]
    fn the_catalog_has_every_scenario_the_page_promises() {
        // Opens descriptors: the lab's property test counts its own alone.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let ids: Vec<&str> = CATALOG.iter().map(|scenario| scenario.id).collect();
        assert_eq!(
            ids,
            [
                "simple-server-client",
                "tcp-echo",
                "udp-echo",
                "unix-stream",
                "unix-dgram",
                "ipv6-echo",
                "multiple-clients",
                "byte-stream",
                "datagram-boundaries",
                "half-close",
                "connection-refused",
                "address-in-use",
                "reset",
                "nonblocking",
                "port-unreachable",
            ]
        );
    }

    fn example_setup() -> RunSetup {
        RunSetup {
            host: Ipv4Addr::new(127, 64, 0, 1),
            alone: false,
            port: PORT,
            port6: OnceCell::from(40000),
            network: crate::network::RunNetwork::machine("a test"),
            dir: PathBuf::from("/tmp/socket-lab-1-1"),
            abstract_prefix: "socket-lab-1-1/".into(),
        }
    }

    /// Where a run's address is not the tutorial's, every program's line that names it says
    /// why; where it is (a network of the run's own, or 127.0.0.1 facing an outside program),
    /// no line says this run's own address.
    #[test]
    fn the_programs_say_why_an_address_is_not_the_tutorials() {
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let shared = example_setup();
        let outside = RunSetup {
            host: Ipv4Addr::LOCALHOST,
            ..example_setup()
        };
        let alone = RunSetup {
            host: Ipv4Addr::LOCALHOST,
            alone: true,
            ..example_setup()
        };
        for id in [
            "simple-server-client",
            "tcp-echo",
            "udp-echo",
            "multiple-clients",
        ] {
            let scenario = find(id).unwrap();
            let code = |setup: &RunSetup| {
                scenario
                    .plan(setup)
                    .roles
                    .iter()
                    .map(|role| role.code.clone())
                    .collect::<String>()
            };
            assert!(code(&shared).contains("127.64.0.1"), "{id}");
            assert!(
                code(&shared).contains("# Socket Lab: this run's own loopback address"),
                "{id}"
            );
            for setup in [&outside, &alone] {
                let code = code(setup);
                assert!(
                    !code.contains("this run's own loopback address"),
                    "{id}: {code}"
                );
                assert!(
                    !code.contains("the server's address in this run"),
                    "{id}: {code}"
                );
            }
        }
        let simple = find("simple-server-client").unwrap();
        assert!(
            simple.plan(&outside).roles[0]
                .code
                .contains("# Socket Lab: where your own program looks")
        );
    }

    /// A cue naming a role or step that does not exist would never be met, and the run would
    /// hang until its time limit.
    #[test]
    fn every_cue_names_a_step_that_exists() {
        // Opens descriptors: the lab's property test counts its own alone.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let setup = example_setup();
        for scenario in CATALOG {
            let plan = scenario.plan(&setup);
            let cues = plan.roles.iter().flat_map(|role| {
                role.start
                    .into_iter()
                    .chain(role.steps.iter().filter_map(|step| step.after))
                    .map(move |cue| (role.role, cue))
            });
            for (waiting, cue) in cues {
                let Some(other) = plan.roles.iter().find(|role| role.role == cue.role) else {
                    panic!(
                        "{}: {waiting} waits for a role {} that does not exist",
                        scenario.id, cue.role
                    );
                };
                assert!(
                    cue.role != waiting,
                    "{}: {waiting} waits for itself",
                    scenario.id
                );
                assert!(
                    cue.step < other.steps.len(),
                    "{}: {waiting} waits for step {} of {}, which has {}",
                    scenario.id,
                    cue.step,
                    cue.role,
                    other.steps.len()
                );
            }
        }
    }

    #[test]
    fn scenario_ids_are_unique_and_findable() {
        // Opens descriptors: the lab's property test counts its own alone.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        for scenario in CATALOG {
            assert_eq!(find(scenario.id).map(|found| found.id), Some(scenario.id));
        }
        assert!(find("no-such-scenario").is_none());
    }

    /// Every step must point at the line of its program that makes its call, or the page
    /// highlights the wrong line.
    #[test]
    fn every_step_points_at_a_line_that_makes_its_call() {
        // Opens descriptors: the lab's property test counts its own alone.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let setup = example_setup();
        for scenario in CATALOG {
            for role in scenario.plan(&setup).roles {
                let lines: Vec<&str> = role.code.lines().collect();
                for step in &role.steps {
                    assert!(
                        step.line > 0,
                        "{} {}: a step's marker names no single line ({:?})",
                        scenario.id,
                        role.role,
                        step.call
                    );
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
