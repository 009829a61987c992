//! Capture on the machine's own loopback, for a scenario run that has no network of its own:
//! where the system forbids unprivileged user namespaces (Ubuntu 24.04 by default).
//!
//! The machine's loopback carries every program's traffic, so the packet socket (which needs
//! `CAP_NET_RAW`: `setcap cap_net_raw+ep` on the binary, as the README says) is bound to `lo`
//! and given a BPF filter that keeps only the run's own packets: those to or from the run's
//! own loopback address (every scenario run has one, `loopback.rs`). The kernel drops the rest
//! before they are queued, so another session's packets are never read. (Each such socket's
//! filter runs on every packet of the machine's loopback while its run lasts; a scenario run
//! lasts milliseconds. Runs that meet an outside program, which may last minutes, are not
//! captured this way.)

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use super::{NetworkCapture, keep, outgoing_only};

/// Which of the machine loopback's packets are a run's: the IPv4 packets to or from this
/// address (a scenario run's own loopback address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RunTraffic(pub(crate) Ipv4Addr);

impl RunTraffic {
    /// Where the packets are captured, as the page says it.
    fn scope(self) -> String {
        format!(
            "the machine's loopback, only those to or from this run's address {} (this system \
             gives Socket Lab no network of its own; IPv6 is not captured)",
            self.0
        )
    }

    /// The BPF program that keeps [`SNAPLEN`](shared::packet::SNAPLEN) bytes of the run's packets leaving their
    /// sockets and drops the rest.
    /// Frames on `lo` have an Ethernet header: the EtherType at 12, the IPv4 header at 14.
    fn filter(self) -> Vec<libc::sock_filter> {
        let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        };
        let load_half = libc::BPF_LD | libc::BPF_H | libc::BPF_ABS;
        let load_word = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
        let jump_if = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
        let keep = keep();
        let drop = op(libc::BPF_RET | libc::BPF_K, 0, 0, 0);
        const IPV4: u32 = 0x0800;
        let address = u32::from(self.0);
        outgoing_only(&[
            op(load_half, 0, 0, 12),
            op(jump_if, 0, 5, IPV4),
            // The source address, then the destination.
            op(load_word, 0, 0, 26),
            op(jump_if, 2, 0, address),
            op(load_word, 0, 0, 30),
            op(jump_if, 0, 1, address),
            keep,
            drop,
        ])
    }
}

/// Starts capturing `traffic` on the machine's loopback for one run; the error says why not
/// (most often: the binary lacks `CAP_NET_RAW`).
pub(crate) fn on_machine_loopback(traffic: RunTraffic) -> Result<NetworkCapture, String> {
    let socket = socket2::Socket::new(
        socket2::Domain::PACKET,
        socket2::Type::RAW.cloexec(),
        Some(i32::from((libc::ETH_P_ALL as u16).to_be()).into()),
    )
    .map_err(|error| match error.raw_os_error() {
        Some(libc::EPERM) => "capturing on the machine's loopback needs CAP_NET_RAW, which this \
                              program does not have (see the README's \"Packets\" to grant it)"
            .to_owned(),
        _ => format!("could not open a packet socket: {error}"),
    })?;
    let socket = OwnedFd::from(socket);
    bind_to_loopback(&socket)
        .map_err(|error| format!("could not bind a packet socket to lo: {error}"))?;
    NetworkCapture::start_filtered(
        socket,
        &traffic.filter(),
        Some(traffic.scope()),
        super::BATCH_DELAY,
    )
    .map_err(|error| format!("could not read the machine's loopback: {error}"))
}

/// Binds a packet socket to `lo`, so that it sees that interface's packets alone.
#[allow(unsafe_code)] // sockaddr_ll has no safe constructor in nix or socket2.
fn bind_to_loopback(socket: &OwnedFd) -> std::io::Result<()> {
    let index = nix::net::if_::if_nametoindex("lo").map_err(std::io::Error::from)?;
    // SAFETY: sockaddr_ll is plain old data, valid all zeros.
    let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    address.sll_ifindex = i32::try_from(index).map_err(std::io::Error::other)?;
    // SAFETY: the address outlives the call, which reads `size_of` bytes of it.
    let result = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            std::ptr::from_ref(&address).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filters' jumps land on a `ret`: every path through each ends keeping or dropping.
    #[test]
    fn every_jump_of_the_filters_lands_inside_them() {
        let traffic = RunTraffic(Ipv4Addr::new(127, 64, 0, 1));
        let program = traffic.filter();
        for (index, instruction) in program.iter().enumerate() {
            if u32::from(instruction.code) & 0x07 == libc::BPF_JMP {
                for jump in [instruction.jt, instruction.jf] {
                    assert!(index + 1 + usize::from(jump) < program.len(), "{traffic:?}");
                }
            }
        }
        let last = program.last().unwrap();
        assert_eq!(u32::from(last.code), libc::BPF_RET | libc::BPF_K);
    }

    /// The run's datagrams on the machine's loopback are kept, and another's beside them are
    /// not. Where this process lacks `CAP_NET_RAW` (an ordinary
    /// user's test run), the reason says so.
    #[test]
    fn only_the_runs_own_packets_are_kept_on_the_machines_loopback() {
        use std::net::UdpSocket;
        use std::sync::Arc;

        use crate::lab::EventSink;

        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let ours = crate::loopback::LoopbackPool::shared().next_address();
        let receiver = UdpSocket::bind((ours, 0)).unwrap();
        let port = receiver.local_addr().unwrap().port();
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        let other_port = other.local_addr().unwrap().port();
        let traffic = RunTraffic(ours);
        let capture = match on_machine_loopback(traffic) {
            Ok(capture) => capture,
            Err(why) => {
                assert!(why.contains("CAP_NET_RAW"), "{why}");
                eprintln!("no capture on the machine's loopback here: {why}");
                return;
            }
        };
        let (sink, mut items) = EventSink::new(64);
        let sink = Arc::new(sink);
        let run = capture.attach(&sink);
        let sender = UdpSocket::bind((ours, 0)).unwrap();
        sender.send_to(b"ours", (ours, port)).unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger
            .send_to(b"not ours", ("127.0.0.1", other_port))
            .unwrap();
        let mut buffer = [0u8; 16];
        receiver.recv(&mut buffer).unwrap();
        other.recv(&mut buffer).unwrap();
        run.finish();
        drop(sink);
        let (packets, states) = crate::capture::tests::packets_and_states(&mut items);
        let payloads: Vec<&[u8]> = packets.iter().map(|p| &p.payload.0[..]).collect();
        assert_eq!(payloads, [&b"ours"[..]], "{traffic:?}");
        let last = states.last().expect("the final state");
        assert!(last.on, "{last:?}");
        assert!(
            last.scope
                .as_deref()
                .unwrap_or_default()
                .contains("machine's loopback"),
            "{last:?}"
        );
    }
}
