//! Gives every run its own loopback address, so runs never collide on a port.
//!
//! Linux routes all of 127.0.0.0/8 to the loopback interface, so any address in it can be
//! bound without configuration. Each run takes the next address of 127.64.0.0/10, which lets
//! every run bind the tutorial's own port 12345 while a whole lab plays at once. The first
//! address is picked from the clock, so a restarted backend does not start where the last one
//! did and meet its connections still in TIME_WAIT.

use std::net::Ipv4Addr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The first address of the pool, 127.64.0.0, as a number.
const POOL_START: u32 = u32::from_be_bytes([127, 64, 0, 0]);
/// How many addresses the pool holds (127.64.0.0/10).
const POOL_SIZE: u32 = 1 << 22;

/// The process's one pool. Every run in the process, whether from a WebSocket session or from
/// `trace`, takes its address here, so no two runs of one process ever get the same address
/// (two pools, each seeded from the clock, could walk into each other's addresses).
static SHARED: LazyLock<LoopbackPool> = LazyLock::new(LoopbackPool::new);

/// Hands out loopback addresses in turn.
#[derive(Debug)]
pub(crate) struct LoopbackPool {
    next: AtomicU32,
}

impl LoopbackPool {
    /// The process's pool.
    pub(crate) fn shared() -> &'static LoopbackPool {
        &SHARED
    }

    /// A pool whose first address depends on the time it was made.
    fn new() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos() ^ (elapsed.as_secs() as u32))
            .unwrap_or(0);
        LoopbackPool {
            next: AtomicU32::new(seed),
        }
    }

    /// The next address, never one ending in .0 or .255 (which look like network and
    /// broadcast addresses to students, though on loopback they are neither).
    pub(crate) fn next_address(&self) -> Ipv4Addr {
        loop {
            let offset = self.next.fetch_add(1, Ordering::Relaxed) % POOL_SIZE;
            let address = Ipv4Addr::from(POOL_START + offset);
            if !matches!(address.octets()[3], 0 | 255) {
                return address;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_loopback_addresses() {
        let pool = LoopbackPool::new();
        let addresses: Vec<Ipv4Addr> = (0..600).map(|_| pool.next_address()).collect();
        for address in &addresses {
            assert!(address.is_loopback(), "{address} is not loopback");
            assert_ne!(*address, Ipv4Addr::LOCALHOST);
            assert!(!matches!(address.octets()[3], 0 | 255), "{address}");
        }
        let mut unique = addresses.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), addresses.len());
    }

    #[test]
    fn the_pool_wraps_around_inside_127_64_0_0_slash_10() {
        let pool = LoopbackPool {
            next: AtomicU32::new(u32::MAX - 1),
        };
        for _ in 0..4 {
            let octets = pool.next_address().octets();
            assert_eq!(octets[0], 127);
            assert!((64..128).contains(&octets[1]), "{octets:?}");
        }
    }
}
