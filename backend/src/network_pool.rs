//! Networks made ahead for the scenario runs to come, shared by every session of the process.
//!
//! Each scenario's run has a network of its own (`RunNetwork::own_for_one_run`), which takes
//! 0.5 to 1 ms to make: a namespace from the broker, its loopback up, a capture socket and
//! thread, the run's kinds of socket opened ahead. A Play takes one made ahead, and the pool
//! makes the next on a blocking thread meanwhile, so that neither a student's Play nor a burst
//! of them waits for the kernel. The pool holds at most [`READY`] networks, whatever the number
//! of sessions: a lab of idle students holds no more than a lab of one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};

use crate::network::RunNetwork;

/// How many networks the pool keeps ready: two, so that a session's next Play finds one even
/// when it comes before the network taken last has been replaced.
const READY: usize = 2;

struct Pool {
    ready: Mutex<Vec<RunNetwork>>,
    /// Whether a blocking thread is filling the pool now.
    filling: AtomicBool,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| Pool {
    ready: Mutex::new(Vec::with_capacity(READY)),
    filling: AtomicBool::new(false),
});

/// A network of Socket Lab's own for one run, made ahead where one was ready; or the
/// machine's, with the reason, where Socket Lab has no networks of its own here.
pub(crate) async fn network_for_a_run() -> RunNetwork {
    let ready = crate::lab::lock(&POOL.ready).pop();
    let network = match ready {
        Some(network) => network,
        None => tokio::task::spawn_blocking(RunNetwork::own_for_one_run)
            .await
            .unwrap_or_else(|error| {
                RunNetwork::machine(format!("the run's network could not be made: {error}"))
            }),
    };
    if network.is_own() {
        fill();
    }
    network
}

/// Makes networks on a blocking thread until the pool holds [`READY`], unless a thread is at
/// it already.
fn fill() {
    if POOL.filling.swap(true, Ordering::AcqRel) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        POOL.filling.store(false, Ordering::Release);
        return;
    };
    runtime.spawn_blocking(|| {
        while crate::lab::lock(&POOL.ready).len() < READY {
            let network = RunNetwork::own_for_one_run();
            if !network.is_own() {
                break;
            }
            crate::lab::lock(&POOL.ready).push(network);
        }
        POOL.filling.store(false, Ordering::Release);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs take networks of their own, each apart from the others, and the pool never holds
    /// more than it keeps ready.
    #[test]
    fn each_run_gets_a_network_of_its_own_and_the_pool_stays_small() {
        crate::lab::tests::alone_on_a_runtime(runs_take_networks_of_their_own());
    }

    async fn runs_take_networks_of_their_own() {
        let first = network_for_a_run().await;
        if !first.is_own() {
            return;
        }
        let second = network_for_a_run().await;
        assert!(first.is_for_one_run() && second.is_for_one_run());
        let listener =
            socket2::Socket::from(first.ip_socket(libc::AF_INET, libc::SOCK_STREAM).unwrap());
        listener
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 12345)).into())
            .unwrap();
        listener.listen(1).unwrap();
        // The second network's loopback has no listener on the tutorial's port.
        let client =
            socket2::Socket::from(second.ip_socket(libc::AF_INET, libc::SOCK_STREAM).unwrap());
        let refused = client.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], 12345)).into());
        assert_eq!(
            refused.err().and_then(|error| error.raw_os_error()),
            Some(libc::ECONNREFUSED)
        );
        for _ in 0..5 {
            drop(network_for_a_run().await);
        }
        let settled = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while POOL.filling.load(Ordering::Acquire) && std::time::Instant::now() < settled {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(crate::lab::lock(&POOL.ready).len() <= READY);
    }
}
