//! The messages that came since the page last drew, and when to draw them. Plain Rust.
//!
//! Every draw of the page costs the browser about 2 ms whatever it brings (PERFORMANCE.md,
//! "Appending"), and a student's loop, or an echo, pours messages in for a few frames. So
//! the page draws a burst of events once, when it pauses, rather than in every frame it
//! lasts; a lone event, and anything that is not events, is drawn in the next frame.

use shared::ServerMessage;

/// A pause between messages this long ends a burst (ms). Longer than the 16.7 ms the server
/// leaves between the messages of a busy run (one a frame, `FRAME_INTERVAL` in the backend's
/// `ws.rs`), so that a burst the server spreads over two or three messages is still drawn
/// once, and a run that keeps pouring in is drawn every [`BURST_MAX_WAIT_MS`], not at every
/// message. A quiet run's lone event waits this long to be shown.
pub const BURST_QUIET_MS: f64 = 20.0;

/// How long a burst may pour in without a pause before the page draws what came anyway
/// (ms): at least 20 draws a second, so the page still moves with a run that never pauses.
pub const BURST_MAX_WAIT_MS: f64 = 50.0;

/// Messages waiting to be applied, with when the oldest and the newest came.
#[derive(Debug, Default)]
pub struct Inbox {
    messages: Vec<ServerMessage>,
    first_arrival_ms: f64,
    last_arrival_ms: f64,
}

impl Inbox {
    /// Queues a message that came at `now_ms` (any clock in milliseconds); says whether it
    /// is the first since the inbox was last taken.
    pub fn push(&mut self, message: ServerMessage, now_ms: f64) -> bool {
        let first = self.messages.is_empty();
        if first {
            self.first_arrival_ms = now_ms;
        }
        self.last_arrival_ms = now_ms;
        self.messages.push(message);
        first
    }

    /// Whether a frame at `now_ms` should apply and draw what is queued: when there is
    /// anything but events, when the burst has paused for [`BURST_QUIET_MS`], or when its
    /// first message has waited [`BURST_MAX_WAIT_MS`].
    pub fn due(&self, now_ms: f64) -> bool {
        let only_events = self
            .messages
            .iter()
            .all(|message| matches!(message, ServerMessage::Events { .. }));
        !only_events
            || now_ms - self.last_arrival_ms >= BURST_QUIET_MS
            || now_ms - self.first_arrival_ms >= BURST_MAX_WAIT_MS
    }

    /// Takes every queued message, oldest first.
    pub fn take(&mut self) -> Vec<ServerMessage> {
        std::mem::take(&mut self.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> ServerMessage {
        ServerMessage::Events {
            run: 1,
            events: Vec::new(),
            dropped: Vec::new(),
        }
    }

    #[test]
    fn a_lone_event_is_drawn_once_a_pause_shows_nothing_follows() {
        let mut inbox = Inbox::default();
        assert!(inbox.push(events(), 100.0));
        // The next frame may come before the pause is long enough to tell.
        assert!(!inbox.due(100.0 + BURST_QUIET_MS - 1.0));
        assert!(inbox.due(100.0 + BURST_QUIET_MS));
    }

    #[test]
    fn a_burst_waits_for_its_pause_and_no_longer_than_the_most() {
        let mut inbox = Inbox::default();
        let mut now = 0.0;
        assert!(inbox.push(events(), now));
        // A message every millisecond: never a pause.
        while now < BURST_MAX_WAIT_MS - 1.0 {
            now += 1.0;
            assert!(!inbox.push(events(), now));
            assert!(!inbox.due(now), "drawn {now} ms into the burst");
        }
        now += 1.0;
        assert!(inbox.due(now), "not drawn after {now} ms of a burst");
        // One message a millisecond from 0 to 49.
        assert_eq!(inbox.take().len(), BURST_MAX_WAIT_MS as usize);
        // Taken, the inbox starts a new burst from the next message.
        assert!(inbox.push(events(), now + 1.0));
        assert!(!inbox.due(now + 2.0));
    }

    #[test]
    fn anything_but_events_is_drawn_at_once() {
        let mut inbox = Inbox::default();
        inbox.push(events(), 0.0);
        inbox.push(
            ServerMessage::RunFinished {
                run: 1,
                outcome: shared::RunOutcome::Completed,
            },
            1.0,
        );
        assert!(inbox.due(1.0));
        assert_eq!(inbox.take().len(), 2);
    }
}
