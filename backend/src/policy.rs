//! [`Policy`]: where a session's sockets may go, and the bounds on what it may use.
//!
//! One policy serves the whole server and every lab holds it. It answers three questions
//! about every address a program binds, connects or sends to, after the protocol's decoder
//! has read the address into its one canonical form (see [`shared::net::parse_host_v4`]):
//!
//! 1. Is the address on this machine, or in a network the operator allowed (`--allow-net`)?
//!    By default only loopback is: a session never sends a packet off the machine.
//! 2. Is it the server's own HTTP address? A session must not talk to the server that runs it.
//! 3. Is it a socket of another session? Each lab registers its socket table here, so a
//!    session that takes addresses from its user (the sandbox, a run with an outside
//!    program) can be refused another session's sockets.
//!
//! No name is ever looked up: the decoder takes `localhost` as the loopback address and
//! refuses other names, so the address checked is always the address used.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use ipnet::IpNet;
use nix::errno::Errno;
use shared::{CallError, SockAddr, SockType};

use crate::lab::{SocketTable, errno, lock};
use crate::limits::Limits;

/// The server's rules for every lab.
#[derive(Debug, Default)]
pub struct Policy {
    /// Networks beyond loopback that sessions may use (`--allow-net`).
    allow_net: Vec<IpNet>,
    /// The server's own HTTP address, which sessions may not reach.
    app_address: Option<SocketAddr>,
    /// The bounds on what sessions may use.
    limits: Limits,
    /// Every lab's socket table, to refuse one session another's sockets.
    labs: Mutex<Vec<(u64, Weak<SocketTable>)>>,
    next_lab: AtomicU64,
}

impl Policy {
    /// A policy with `limits` that allows loopback only and knows no server address.
    pub fn new(limits: Limits) -> Self {
        Policy {
            limits,
            ..Policy::default()
        }
    }

    /// Allows these networks besides loopback.
    #[must_use]
    pub fn allow_networks(mut self, networks: Vec<IpNet>) -> Self {
        self.allow_net = networks;
        self
    }

    /// Whether sessions may reach networks beyond loopback (`--allow-net`).
    pub fn allows_beyond_loopback(&self) -> bool {
        !self.allow_net.is_empty()
    }

    /// Refuses sessions the server's own address.
    #[must_use]
    pub fn serving_at(mut self, address: SocketAddr) -> Self {
        self.app_address = Some(address);
        self
    }

    /// The bounds on what sessions may use.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Registers a lab's socket table; returns the lab's id.
    pub(crate) fn register(&self, table: &Arc<SocketTable>) -> u64 {
        let id = self.next_lab.fetch_add(1, Ordering::Relaxed);
        let mut labs = lock(&self.labs);
        labs.retain(|(_, table)| table.strong_count() > 0);
        labs.push((id, Arc::downgrade(table)));
        id
    }

    /// Checks an IP address a lab is about to bind, connect or send to.
    pub(crate) fn check_ip(&self, address: IpAddr) -> Result<(), CallError> {
        let address = canonical(address);
        if address.is_loopback() || self.allow_net.iter().any(|net| net.contains(&address)) {
            return Ok(());
        }
        let widened = if self.allow_net.is_empty() {
            String::new()
        } else {
            let nets: Vec<String> = self.allow_net.iter().map(ToString::to_string).collect();
            format!(" or the networks the server allows ({})", nets.join(", "))
        };
        Err(errno::refused_by_lab(
            Errno::EACCES,
            format!(
                "{address} is not a loopback address; Socket Lab only binds, connects and \
                 sends on this machine (127.0.0.0/8 and ::1){widened}"
            ),
        ))
    }

    /// Checks a destination (of `connect` or `sendto`) of a `sock_type` socket of lab `lab`:
    /// not the server itself, and, when `other_sessions` is set, no socket of another lab.
    /// TCP and UDP ports are apart: a datagram to the server's port reaches no TCP listener,
    /// and a UDP socket of another session shares nothing with a TCP one on its port.
    pub(crate) fn check_destination(
        &self,
        lab: u64,
        sock_type: SockType,
        destination: SocketAddr,
        other_sessions: bool,
    ) -> Result<(), CallError> {
        if let Some(app) = self.app_address
            && sock_type == SockType::Stream
            && same_place(app, destination)
        {
            return Err(errno::refused_by_lab(
                Errno::EACCES,
                format!("{destination} is Socket Lab's own web server; sessions may not reach it"),
            ));
        }
        if !other_sessions {
            return Ok(());
        }
        let labs: Vec<(u64, Arc<SocketTable>)> = lock(&self.labs)
            .iter()
            .filter(|(id, _)| *id != lab)
            .filter_map(|(id, table)| Some((*id, table.upgrade()?)))
            .collect();
        for (_, table) in labs {
            if table
                .local_addresses()
                .into_iter()
                .any(|(theirs, local)| theirs == sock_type && same_place(local, destination))
            {
                return Err(errno::refused_by_lab(
                    Errno::EACCES,
                    format!(
                        "{destination} is a socket of another session; sessions may not reach each other"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether a packet sent to `destination` reaches a socket bound at `bound`: the same port,
/// and the same address or a socket bound to every address.
fn same_place(bound: SocketAddr, destination: SocketAddr) -> bool {
    let bound_ip = canonical(bound.ip());
    bound.port() == destination.port()
        && (bound_ip.is_unspecified() || bound_ip == canonical(destination.ip()))
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as the IPv4 address it is.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// The IP address and port of a protocol address, for the checks above.
pub(crate) fn ip_address(address: &SockAddr) -> Option<SocketAddr> {
    match address {
        SockAddr::Inet { host, port } => Some(SocketAddr::from((*host, *port))),
        SockAddr::Inet6 { host, port, .. } => Some(SocketAddr::from((*host, *port))),
        SockAddr::Unix { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn loopback_only_unless_a_network_is_allowed() {
        let policy = Policy::default();
        for allowed in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"] {
            assert!(policy.check_ip(ip(allowed)).is_ok(), "{allowed}");
        }
        for refused in [
            "0.0.0.0",
            "10.0.0.1",
            "192.168.1.1",
            "8.8.8.8",
            "::",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "fe80::1",
        ] {
            let error = policy.check_ip(ip(refused)).unwrap_err();
            assert_eq!(error.errno, "EACCES", "{refused}");
        }
        let lab = Policy::default().allow_networks(vec!["10.1.0.0/16".parse().unwrap()]);
        assert!(lab.check_ip(ip("10.1.2.3")).is_ok());
        assert!(lab.check_ip(ip("::ffff:10.1.2.3")).is_ok());
        let error = lab.check_ip(ip("10.2.0.1")).unwrap_err();
        assert!(error.message.contains("10.1.0.0/16"), "{}", error.message);
    }

    #[test]
    fn the_servers_own_address_is_refused() {
        let on_loopback = Policy::default().serving_at("127.0.0.1:3000".parse().unwrap());
        for refused in ["127.0.0.1:3000", "[::ffff:127.0.0.1]:3000"] {
            assert!(
                on_loopback
                    .check_destination(0, SockType::Stream, refused.parse().unwrap(), false)
                    .is_err(),
                "{refused}"
            );
        }
        for allowed in ["127.0.0.2:3000", "127.0.0.1:3001"] {
            assert!(
                on_loopback
                    .check_destination(0, SockType::Stream, allowed.parse().unwrap(), false)
                    .is_ok(),
                "{allowed}"
            );
        }
        let everywhere = Policy::default().serving_at("0.0.0.0:3000".parse().unwrap());
        assert!(
            everywhere
                .check_destination(
                    0,
                    SockType::Stream,
                    "127.9.9.9:3000".parse().unwrap(),
                    false
                )
                .is_err()
        );
        // The server is TCP: a datagram to its port reaches no listener, and is the
        // student's to send (a UDP socket's own port may be the same number).
        assert!(
            on_loopback
                .check_destination(0, SockType::Dgram, "127.0.0.1:3000".parse().unwrap(), false)
                .is_ok()
        );
    }
}
