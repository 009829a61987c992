//! [`Gate`]: the "pause before each call" of a run, opened one call at a time by the user.

use std::collections::VecDeque;
use std::sync::Mutex;

use shared::NextCall;
use tokio::sync::oneshot;

use crate::lab::EventSink;

/// Holds each call of a paused run until the user lets it through.
///
/// Roles that reach the gate wait in line, in the order they arrived; the first in line is
/// announced ([`shared::ServerMessage::Paused`]) and goes when [`Gate::open_once`] is called.
/// A role that waits in a blocking call or for another role's cue is not in line.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    line: Mutex<VecDeque<Waiting>>,
}

#[derive(Debug)]
struct Waiting {
    next: NextCall,
    go: oneshot::Sender<()>,
}

impl Gate {
    /// Waits until the user lets this call through.
    pub(crate) async fn pass(&self, next: NextCall, sink: &EventSink) {
        let (go, gone) = oneshot::channel();
        {
            let mut line = self.lock();
            if line.is_empty() {
                sink.paused(next.clone());
            }
            line.push_back(Waiting { next, go });
        }
        // An error means the gate is gone, which happens only when the run is being dropped.
        let _ = gone.await;
        // This call goes now; the one behind it is next.
        if let Some(waiting) = self.lock().front() {
            sink.paused(waiting.next.clone());
        }
    }

    /// Lets the first waiting call through; `false` when no call waits.
    pub(crate) fn open_once(&self) -> bool {
        let mut line = self.lock();
        while let Some(first) = line.pop_front() {
            // A call whose run is being stopped no longer waits; let the next one go instead.
            if first.go.send(()).is_ok() {
                return true;
            }
        }
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Waiting>> {
        self.line
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
