//! [`Limits`]: every bound on what sessions may use, with its default and its option.
//!
//! One set serves the whole server. The defaults fit a teaching lab of a few hundred students
//! on a small machine; each can be changed on the command line (`backend --help` lists them).
//! A limit reached is always said in words that name it and its option: as a call's error
//! (`origin: "lab"`), an `Error` message with code `limit_reached`, or a WebSocket close
//! code of 1008 or 1013 with the reason.

use std::time::Duration;

/// The bounds on sessions and what they do.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct Limits {
    /// Sessions (open pages) served at once, in total.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub max_sessions: usize,
    /// Sessions served at once to one client address. Behind NAT a whole lab shares an
    /// address, so this is generous.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_sessions_per_client: usize,
    /// Sockets one session may hold open at once.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_sockets: usize,
    /// The largest WebSocket message (and frame) a page may send, in bytes.
    #[arg(long, default_value_t = 16 * 1024, value_name = "BYTES")]
    pub max_message_bytes: usize,
    /// The most bytes one send, sendall or sendto of the user's own may carry.
    #[arg(long, default_value_t = 4096, value_name = "BYTES")]
    pub max_send_bytes: usize,
    /// The largest buffer one recv or recvfrom may ask for.
    #[arg(long, default_value_t = shared::MAX_RECV_BUFSIZE, value_name = "BYTES")]
    pub max_recv_bytes: usize,
    /// Messages a page may send each second (calls, plays, steps), on average over a
    /// burst of as many.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub max_messages_per_sec: u32,
    /// Seconds a session may go without a message from its page before it is closed
    /// (a paused run waiting for "Next" counts as idle too).
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub idle_timeout: u64,
    /// Seconds one call of the user's own in the sandbox may wait (an accept nobody connects
    /// to, a recv nobody sends to) before it is given up with ETIMEDOUT.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub max_call_wait: u64,
    /// Seconds a scenario may play (an hour when it pauses before each call; an outside
    /// program's own timeout when one plays a role).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub max_run_time: u64,
    /// Events a session holds for a page that reads slower than they come; beyond it,
    /// events are dropped and the page is told how many.
    #[arg(long, default_value_t = 512, value_name = "EVENTS")]
    pub event_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 2000,
            max_sessions_per_client: 256,
            max_sockets: 64,
            max_message_bytes: 16 * 1024,
            max_send_bytes: 4096,
            max_recv_bytes: shared::MAX_RECV_BUFSIZE,
            max_messages_per_sec: 50,
            idle_timeout: 3600,
            max_call_wait: 600,
            max_run_time: 30,
            event_queue: 512,
        }
    }
}

impl Limits {
    /// How long a session may be idle.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout)
    }

    /// How long a call of the user's own may wait.
    pub fn max_call_wait(&self) -> Duration {
        Duration::from_secs(self.max_call_wait)
    }

    /// How long a scenario may play.
    pub fn max_run_time(&self) -> Duration {
        Duration::from_secs(self.max_run_time)
    }

    /// Whether the limits can serve anyone at all; the reason if not.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("--max-sessions", self.max_sessions),
            ("--max-sessions-per-client", self.max_sessions_per_client),
            ("--max-sockets", self.max_sockets),
            ("--max-send-bytes", self.max_send_bytes),
            ("--max-recv-bytes", self.max_recv_bytes),
            ("--event-queue", self.event_queue),
        ];
        for (option, value) in positive {
            if value == 0 {
                return Err(format!("{option} must be at least 1"));
            }
        }
        if self.max_message_bytes < 1024 {
            return Err(
                "--max-message-bytes must be at least 1024 (a call's message is a few hundred)"
                    .to_owned(),
            );
        }
        if self.max_recv_bytes > shared::MAX_RECV_BUFSIZE {
            return Err(format!(
                "--max-recv-bytes can be at most {} (the page's own limit)",
                shared::MAX_RECV_BUFSIZE
            ));
        }
        if self.max_messages_per_sec == 0 {
            return Err("--max-messages-per-sec must be at least 1".to_owned());
        }
        for (option, value) in [
            ("--idle-timeout", self.idle_timeout),
            ("--max-call-wait", self.max_call_wait),
            ("--max-run-time", self.max_run_time),
        ] {
            if value == 0 || value > 7 * 24 * 3600 {
                return Err(format!("{option} must be 1 to 604800 seconds, not {value}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Options {
        #[command(flatten)]
        limits: Limits,
    }

    #[test]
    fn the_options_defaults_are_the_libraries_defaults() {
        let parsed = Options::parse_from(["backend"]).limits;
        assert_eq!(parsed, Limits::default());
        assert_eq!(parsed.check(), Ok(()));
    }

    #[test]
    fn limits_that_serve_nobody_are_refused() {
        let zero_sockets = Options::parse_from(["backend", "--max-sockets", "0"]).limits;
        assert!(zero_sockets.check().unwrap_err().contains("--max-sockets"));
        let huge_recv = Options::parse_from(["backend", "--max-recv-bytes", "99999999"]).limits;
        assert!(huge_recv.check().is_err());
        let tiny_message = Options::parse_from(["backend", "--max-message-bytes", "10"]).limits;
        assert!(tiny_message.check().is_err());
    }
}
