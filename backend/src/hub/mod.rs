//! The hub: the watched programs of this machine (`socket-lab watch`), gathered into runs
//! that pages can show.
//!
//! Each `watch` hands its program's events to the hub of the Socket Lab serving on this
//! machine, through a Unix socket only its user can reach (`handin.rs`), or, when none
//! serves, serves the page itself with a hub of its own. Every `watch` that starts while a
//! watched run is in progress joins that run, so a student's server and client, watched in
//! two terminals, are one run with both processes' lifelines, and each byte is drawn from
//! the `send` that wrote it to the `recv` that read it. The run ends when the last of its
//! programs has ended; the next `watch` starts the next run.
//!
//! The hub numbers the run's events in the order they reach it, keeps the run's first
//! [`LOG_EVENTS`] events (and counts the rest) for pages that come later, and forwards each
//! event to every page showing the run through a queue of the page's own: a page that reads
//! slowly gets its missed events counted, as for a scenario, and slows nobody else.

pub(crate) mod handin;
mod packets;

use std::sync::Mutex;

use shared::{Dropped, Event, RoleProgram, RunOutcome, ScenarioInfo};
use tokio::sync::watch;

use crate::lab::{EventSink, RunItem, RunItems, lock};

/// A watched run's number on a page is the hub's number for it plus this, so that it never
/// meets the number of a scenario the page played on the same connection.
pub(crate) const WATCH_RUN_BASE: u64 = 1 << 40;

/// The events of a run the hub keeps for a page that opens after they happened; the rest
/// are counted (and tallied by call) in one range, as a firehose's are.
pub(crate) const LOG_EVENTS: usize = 4096;

/// How long, while two or more programs are watched, the hub holds each event for one of
/// another process that happened before it but reached the hub after it. Each `watch` hands
/// its events in as they happen, but on a busy machine one `watch` may be scheduled a few
/// milliseconds after another: without the wait, a client's `connect` could be shown after
/// the server's `accept` that it caused. A single program's events go at once.
const REORDER_WINDOW_US: u64 = 20_000;

/// The queue of each page showing a watched run: room for the whole kept log at once, and
/// for what comes while the page reads it.
const PAGE_QUEUE: usize = LOG_EVENTS + 1024;

/// The watched runs of this machine.
#[derive(Debug)]
pub(crate) struct Hub {
    state: Mutex<State>,
    /// The number of the newest run, changed when a run starts or ends.
    runs: watch::Sender<u64>,
    /// Told when an event is held for the reorder window: only then does anything need to
    /// wake to release it ([`Hub::tick`]).
    holding: tokio::sync::Notify,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            state: Mutex::new(State::default()),
            runs: watch::Sender::new(0),
            holding: tokio::sync::Notify::new(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    last_id: u64,
    /// The run in progress, or else the last one, kept for pages that open later.
    run: Option<HubRun>,
}

#[derive(Debug)]
struct HubRun {
    id: u64,
    info: ScenarioInfo,
    /// When the run started, on the machine's monotonic clock, which every `watch` reads too.
    started_us: u64,
    /// Events held for [`REORDER_WINDOW_US`], in time order.
    held: Vec<Event>,
    /// Each program sent so far, by role and file: a program is sent once.
    programs: Vec<(String, Option<String>)>,
    /// What a page that opens now is sent first: the first events, the programs, and the
    /// count of the events not kept.
    log: Vec<RunItem>,
    logged_events: usize,
    next_seq: u64,
    /// The `watch`es still taking part.
    members: usize,
    /// The number the next member gets.
    next_member: u64,
    /// The packets its `watch --private-net`s captured.
    packets: packets::RunPackets,
    /// How each member's program ended: its words, and whether it ended well.
    endings: Vec<(String, bool)>,
    outcome: Option<RunOutcome>,
    /// The queues of the pages showing the run.
    pages: Vec<EventSink>,
}

/// A member's place in a run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Membership {
    run: u64,
    member: u64,
}

/// A page's view of one watched run: the messages to start it with, and its items.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// The hub's number of the run.
    pub(crate) id: u64,
    /// What the page shows as the run's "scenario".
    pub(crate) info: ScenarioInfo,
    /// The run's items; the stream ends when the run has ended.
    pub(crate) items: RunItems,
}

/// What a watched program's `watch` hands the hub after its greeting.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Nearly every item is an event; boxing each would cost an allocation.
pub(crate) enum Item {
    /// An event, timed by its `watch` on the monotonic clock ([`monotonic_us`]); the hub
    /// numbers it in the run and times it from the run's start.
    Event(Event),
    /// A program the events after it name.
    Program(RoleProgram),
    /// Events the `watch` could not send (the hub was slower than the program).
    Dropped(Dropped),
    /// A packet of the private network (`watch --private-net`), timed as events are.
    Packet(shared::Packet),
    /// How the `watch`'s capture stands: on, with its counts, or off and why.
    Capture(shared::Capture),
}

impl Hub {
    /// A `watch` of `command` joins the run in progress, or starts one.
    pub(crate) fn join(&self, command: &str) -> Membership {
        let mut state = lock(&self.state);
        if state.run.as_ref().is_none_or(|run| run.outcome.is_some()) {
            state.last_id += 1;
            let id = state.last_id;
            state.run = Some(HubRun {
                id,
                info: ScenarioInfo {
                    id: "watch".to_owned(),
                    title: format!("Watching {command}"),
                    summary: "Your own programs, run under `socket-lab watch`: every socket \
                              system call they make, traced from the kernel, with the \
                              kernel's view of each socket."
                        .to_owned(),
                    outside_roles: Vec::new(),
                },
                started_us: monotonic_us(),
                held: Vec::new(),
                programs: Vec::new(),
                log: Vec::new(),
                logged_events: 0,
                next_seq: 0,
                members: 0,
                next_member: 0,
                packets: packets::RunPackets::default(),
                endings: Vec::new(),
                outcome: None,
                pages: Vec::new(),
            });
            self.runs.send_replace(id);
        }
        let Some(run) = state.run.as_mut() else {
            unreachable!("a run was just made if there was none");
        };
        run.members += 1;
        run.next_member += 1;
        Membership {
            run: run.id,
            member: run.next_member,
        }
    }

    /// Adds what a member handed in to its run.
    pub(crate) fn publish(&self, member: Membership, item: Item) {
        let mut state = lock(&self.state);
        let Some(run) = state
            .run
            .as_mut()
            .filter(|run| run.id == member.run && run.outcome.is_none())
        else {
            return;
        };
        match item {
            Item::Event(mut event) => {
                event.t_us = event.t_us.saturating_sub(run.started_us);
                if run.members <= 1 && run.held.is_empty() {
                    run.send(event);
                } else {
                    let at = run.held.partition_point(|held| held.t_us <= event.t_us);
                    run.held.insert(at, event);
                    run.release(false);
                    self.holding.notify_one();
                }
            }
            Item::Program(program) => {
                let key = (program.role.clone(), program.file.clone());
                if run.programs.contains(&key) {
                    return;
                }
                run.programs.push(key);
                for page in &run.pages {
                    page.program(program.clone());
                }
                run.log.push(RunItem::Program(program));
            }
            Item::Dropped(mut dropped) => {
                if dropped.count == 0 {
                    return;
                }
                dropped.first_seq = run.next_seq;
                dropped.last_seq = run.next_seq + dropped.count - 1;
                run.next_seq += dropped.count;
                for page in &run.pages {
                    page.forward_dropped(dropped.clone());
                }
                run.log.push(RunItem::Dropped(dropped));
            }
            Item::Packet(mut packet) => {
                packet.t_us = packet.t_us.saturating_sub(run.started_us);
                if let Some(packet) = run.packets.take(member.member, packet) {
                    // A page whose queue is full misses it; the page's own count of what it
                    // missed is of events (a known gap: the hub's pages do not count lost
                    // packets apart).
                    for page in &run.pages {
                        page.packet(packet.clone());
                    }
                }
            }
            Item::Capture(capture) => {
                let merged = run.packets.state(member.member, capture);
                for page in &run.pages {
                    page.capture(merged.clone());
                }
            }
        }
    }

    /// A member has left its run, saying how its program ended (`None` when its `watch`
    /// went away without saying). The run ends with its last member.
    pub(crate) fn leave(&self, member: Membership, ending: Option<(String, bool)>) {
        let mut state = lock(&self.state);
        let Some(run) = state.run.as_mut().filter(|run| run.id == member.run) else {
            return;
        };
        run.endings.push(ending.unwrap_or_else(|| {
            (
                "a watch went away without saying how its program ended".to_owned(),
                false,
            )
        }));
        run.members = run.members.saturating_sub(1);
        run.packets.leave(member.member);
        if run.members <= 1 {
            // Nothing can come out of order any more.
            run.release(true);
        }
        if run.members == 0 {
            let failed: Vec<&str> = run
                .endings
                .iter()
                .filter(|(_, ok)| !ok)
                .map(|(text, _)| text.as_str())
                .collect();
            run.outcome = Some(if failed.is_empty() {
                RunOutcome::Completed
            } else {
                RunOutcome::Cancelled {
                    reason: failed.join("; "),
                }
            });
            if run.packets.told() {
                let merged = run.packets.merged();
                for page in &run.pages {
                    page.capture(merged.clone());
                }
            }
            // Dropping a page's queue ends its stream once the page has read it.
            run.pages.clear();
            let id = run.id;
            self.runs.send_replace(id);
        }
    }

    /// Sends the held events whose wait is over; returns whether any are still held. Called
    /// every few milliseconds while some are.
    pub(crate) fn tick(&self) -> bool {
        let mut state = lock(&self.state);
        state.run.as_mut().is_some_and(|run| {
            run.release(false);
            !run.held.is_empty()
        })
    }

    /// Completes when an event has been held since the last call.
    pub(crate) async fn held(&self) {
        self.holding.notified().await;
    }

    /// The run a page should show after the one numbered `after` (0 for none yet): the run
    /// in progress or the last one, if it is newer. Its stream starts with what the run has
    /// done so far.
    pub(crate) fn subscribe(&self, after: u64) -> Option<Subscription> {
        let mut state = lock(&self.state);
        let run = state.run.as_mut().filter(|run| run.id > after)?;
        let (sink, items) = EventSink::new(PAGE_QUEUE);
        for item in &run.log {
            match item {
                RunItem::Event(event) => sink.forward(event),
                RunItem::Program(program) => sink.program(program.clone()),
                RunItem::Dropped(dropped) => sink.forward_dropped(dropped.clone()),
                RunItem::Paused(_) | RunItem::Packet(_) | RunItem::Capture(_) => {}
            }
        }
        // The packets so far, then how the capture stands; the page puts packets and events
        // in time order itself.
        if run.packets.told() {
            sink.capture(run.packets.merged());
        }
        for packet in &run.packets.kept {
            sink.packet(packet.clone());
        }
        // A finished run's stream ends after its log: the sink is dropped here.
        if run.outcome.is_none() {
            run.pages.push(sink);
        }
        Some(Subscription {
            id: run.id,
            info: run.info.clone(),
            items,
        })
    }

    /// How run `id` ended, if it has and the hub still has it.
    pub(crate) fn outcome(&self, id: u64) -> Option<RunOutcome> {
        let state = lock(&self.state);
        state
            .run
            .as_ref()
            .filter(|run| run.id == id)
            .and_then(|run| run.outcome.clone())
    }

    /// Tells of every run that starts or ends from now on.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.runs.subscribe()
    }
}

impl HubRun {
    /// Numbers an event, sends it to every page, and keeps it for pages to come.
    fn send(&mut self, mut event: Event) {
        event.seq = self.next_seq;
        self.next_seq += 1;
        for page in &self.pages {
            page.forward(&event);
        }
        if self.logged_events < LOG_EVENTS {
            self.logged_events += 1;
            self.log.push(RunItem::Event(event));
        } else {
            let extended = match self.log.last_mut() {
                Some(RunItem::Dropped(range)) => range.extend(&event),
                _ => false,
            };
            if !extended {
                self.log.push(RunItem::Dropped(Dropped::of(&event)));
            }
        }
    }

    /// Sends the held events that have waited [`REORDER_WINDOW_US`], or all of them.
    fn release(&mut self, all: bool) {
        let now = monotonic_us().saturating_sub(self.started_us);
        let due = if all {
            self.held.len()
        } else {
            self.held
                .partition_point(|held| held.t_us.saturating_add(REORDER_WINDOW_US) <= now)
        };
        let released: Vec<Event> = self.held.drain(..due).collect();
        for event in released {
            self.send(event);
        }
    }
}

/// Microseconds on the machine's monotonic clock (`CLOCK_MONOTONIC`), the clock every
/// process of the machine reads alike: events of two `watch`es are timed on one clock.
pub(crate) fn monotonic_us() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|time| {
            u64::try_from(time.tv_sec()).unwrap_or(0) * 1_000_000
                + u64::try_from(time.tv_nsec()).unwrap_or(0) / 1_000
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{Call, Phase};

    fn event(endpoint: &str, call: Call) -> Event {
        let mut event = Event::enter("p[1]", endpoint, None, call);
        event.t_us = 5;
        event
    }

    async fn drain(items: &mut RunItems) -> Vec<RunItem> {
        let mut all = Vec::new();
        while let Some(item) = items.try_recv() {
            all.push(item);
        }
        all
    }

    /// How many events the items' dropped ranges count.
    fn dropped_count(items: &[RunItem]) -> u64 {
        items
            .iter()
            .filter_map(|item| match item {
                RunItem::Dropped(range) => Some(range.count),
                _ => None,
            })
            .sum()
    }

    fn seqs(items: &[RunItem]) -> Vec<u64> {
        items
            .iter()
            .filter_map(|item| match item {
                RunItem::Event(event) => Some(event.seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn two_watches_are_one_run_numbered_in_order_and_it_ends_with_the_last() {
        crate::lab::tests::alone_on_a_runtime(async {
            let hub = Hub::default();
            let server = hub.join("python3 server.py");
            let client = hub.join("python3 client.py");
            let mut page = hub.subscribe(0).unwrap();
            hub.publish(server, Item::Event(event("s.fd3", Call::Accept)));
            hub.publish(
                client,
                Item::Program(RoleProgram {
                    role: "client.py[2]".into(),
                    code: "import socket\n".into(),
                    outside: false,
                    file: Some("client.py".into()),
                }),
            );
            hub.publish(client, Item::Event(event("c.fd3", Call::Close)));
            // Two programs: their events wait a moment for any of the other's that came late.
            let first = drain(&mut page.items).await;
            assert!(
                matches!(first[..], [RunItem::Program(_)]),
                "a program goes at once"
            );
            tokio::time::sleep(std::time::Duration::from_micros(REORDER_WINDOW_US + 5_000)).await;
            hub.tick();
            let items = drain(&mut page.items).await;
            assert_eq!(seqs(&items), vec![0, 1]);
            hub.leave(
                client,
                Some(("client.py[2] exited with status 0".into(), true)),
            );
            assert_eq!(hub.outcome(page.id), None, "the server still runs");
            // A page that opens now gets what happened so far, in the same order.
            let mut late = hub.subscribe(0).unwrap();
            assert_eq!(late.id, page.id);
            assert_eq!(seqs(&drain(&mut late.items).await), vec![0, 1]);
            hub.leave(
                server,
                Some(("server.py[1] was killed by SIGSEGV".into(), false)),
            );
            assert_eq!(
                hub.outcome(page.id),
                Some(RunOutcome::Cancelled {
                    reason: "server.py[1] was killed by SIGSEGV".into()
                })
            );
            // The run's streams end, and the next watch starts the next run.
            assert!(page.items.recv().await.is_none());
            let next = hub.join("nc -l 9000");
            assert!(hub.subscribe(page.id).is_some());
            hub.leave(next, None);
            assert!(matches!(
                hub.outcome(page.id + 1),
                Some(RunOutcome::Cancelled { reason }) if reason.contains("without saying")
            ));
        });
    }

    #[test]
    fn two_programs_events_are_shown_in_the_order_they_happened() {
        crate::lab::tests::alone_on_a_runtime(async {
            let hub = Hub::default();
            let server = hub.join("server");
            let client = hub.join("client");
            let mut page = hub.subscribe(0).unwrap();
            let now = monotonic_us();
            let mut accepted = event("s.fd3", Call::Accept);
            accepted.t_us = now;
            let mut connect = event(
                "c.fd3",
                Call::Connect {
                    address: shared::SockAddr::Unix {
                        path: "x".into(),
                        r#abstract: false,
                    },
                },
            );
            connect.t_us = now - 3_000;
            // The server's accept reaches the hub first; the client's connect, 3 ms earlier, next.
            hub.publish(server, Item::Event(accepted));
            hub.publish(client, Item::Event(connect));
            hub.leave(client, Some(("client exited with status 0".into(), true)));
            let calls: Vec<String> = drain(&mut page.items)
                .await
                .iter()
                .filter_map(|item| match item {
                    RunItem::Event(event) => Some(format!("{} {}", event.seq, event.call.name())),
                    _ => None,
                })
                .collect();
            assert_eq!(calls, ["0 connect", "1 accept"]);
        });
    }

    #[test]
    fn a_page_that_reads_slowly_misses_counted_events_and_slows_no_other_page() {
        crate::lab::tests::alone_on_a_runtime(async {
            let hub = Hub::default();
            let member = hub.join("firehose");
            let mut slow = hub.subscribe(0).unwrap();
            let mut quick = hub.subscribe(0).unwrap();
            let total = 3 * PAGE_QUEUE;
            let mut quick_events = 0;
            for _ in 0..total {
                let mut returned = event("p[1].fd3", Call::Recv { bufsize: 4 });
                returned.phase = Phase::Return;
                hub.publish(member, Item::Event(returned));
                quick_events += seqs(&drain(&mut quick.items).await).len();
            }
            assert_eq!(
                quick_events, total,
                "the page that keeps up gets every event"
            );
            let items = drain(&mut slow.items).await;
            let shown = seqs(&items).len();
            let dropped = dropped_count(&items);
            assert!(shown < total, "the slow page's queue is bounded");
            assert_eq!(
                shown as u64 + dropped,
                total as u64,
                "and every event is shown or counted"
            );
        });
    }

    #[test]
    fn a_long_run_keeps_its_first_events_and_counts_the_rest_for_late_pages() {
        crate::lab::tests::alone_on_a_runtime(async {
            let hub = Hub::default();
            let member = hub.join("firehose");
            let total = LOG_EVENTS + 100;
            for _ in 0..total {
                let mut returned = event("p[1].fd3", Call::Recv { bufsize: 4 });
                returned.phase = Phase::Return;
                hub.publish(member, Item::Event(returned));
            }
            hub.publish(
                member,
                Item::Dropped(Dropped {
                    count: 7,
                    ..Default::default()
                }),
            );
            let mut late = hub.subscribe(0).unwrap();
            let items = drain(&mut late.items).await;
            assert_eq!(seqs(&items).len(), LOG_EVENTS);
            let dropped = dropped_count(&items);
            assert_eq!(
                dropped,
                100 + 7,
                "every event is a kept one or a counted one"
            );
        });
    }
}
