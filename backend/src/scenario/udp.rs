//! UDP scenarios: an echo without connections, and datagrams that keep their boundaries.

use shared::{Call, Family, SockType};

use super::{Cue, Plan, RolePlan, Scenario, bytes};

fn udp() -> Call {
    Call::Socket {
        family: Family::Inet,
        sock_type: SockType::Dgram,
    }
}

pub(super) const UDP_ECHO: Scenario = Scenario {
    id: "udp-echo",
    title: "UDP echo with sendto and recvfrom",
    summary: "Datagrams need no connection: no listen(), no accept(), no connect(). The server \
              binds and waits in recvfrom(), which returns the datagram and the address it \
              came from; it answers with sendto() to that address. The client never binds: \
              its first sendto() makes the kernel give it a port, which is where the answer \
              comes back.",
    outside: &[],
    plan: |setup| {
        let host = setup.host;
        let port = setup.port;
        let (mine, theirs) = (setup.own_address_note(), setup.server_address_note());
        let mut server = RolePlan::new(
            "server",
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('{host}', {port})){mine}
data, addr = s.recvfrom(1024)
print('Datagram from', addr)
s.sendto(data, addr)
s.close()
"
            ),
        );
        server.serves(udp(), &setup.server(), None);
        server.step("s.recvfrom", "s", Call::Recvfrom { bufsize: 1024 });
        let recvfrom = server.last();
        server
            .step(
                "s.sendto",
                "s",
                Call::Sendto {
                    data: bytes(""),
                    address: setup.server(),
                },
            )
            .echo();
        server.step("s.close()", "s", Call::Close);

        let mut client = RolePlan::new(
            "client",
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b'Hello, UDP', ('{host}', {port})){theirs}
data, addr = s.recvfrom(1024)
print(data, 'from', addr)
s.close()
"
            ),
        )
        .starts(Cue::entered("server", recvfrom));
        client.step("s = socket.socket", "s", udp());
        client.step(
            "s.sendto",
            "s",
            Call::Sendto {
                data: bytes("Hello, UDP"),
                address: setup.server(),
            },
        );
        client.step("s.recvfrom", "s", Call::Recvfrom { bufsize: 1024 });
        client.step("s.close()", "s", Call::Close);
        Plan {
            roles: vec![server, client],
            outside: Vec::new(),
        }
    },
};

pub(super) const DATAGRAM_BOUNDARIES: Scenario = Scenario {
    id: "datagram-boundaries",
    title: "Datagrams keep their boundaries",
    summary: "The client sends three datagrams before the server reads any. Unlike TCP's \
              stream, each recvfrom() returns exactly one datagram, however many are waiting. \
              The last recvfrom() offers a buffer of 8 bytes for a datagram of 17: the kernel \
              gives the first 8 and drops the rest for good, without an error.",
    outside: &[],
    plan: |setup| {
        let host = setup.host;
        let port = setup.port;
        let (mine, theirs) = (setup.own_address_note(), setup.server_address_note());
        let mut server = RolePlan::new(
            "server",
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('{host}', {port})){mine}
input('Start the client, then press Enter')  # Socket Lab: waits until it has sent all three
for bufsize in [1024, 1024, 8]:
    data, addr = s.recvfrom(bufsize)
    print(len(data), data)
s.close()
"
            ),
        );
        server.serves(udp(), &setup.server(), None);
        let bind = server.last();

        let mut client = RolePlan::new(
            "client",
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for message in [b'one', b'two two', b'three three three']:
    s.sendto(message, ('{host}', {port})){theirs}
s.close()
"
            ),
        )
        .starts(Cue::returned("server", bind));
        client.step("s = socket.socket", "s", udp());
        for message in ["one", "two two", "three three three"] {
            client.step(
                "s.sendto",
                "s",
                Call::Sendto {
                    data: bytes(message),
                    address: setup.server(),
                },
            );
        }
        let last_send = client.last();
        client.step("s.close()", "s", Call::Close);
        for bufsize in [1024, 1024, 8] {
            let step = server.step("s.recvfrom", "s", Call::Recvfrom { bufsize });
            if bufsize == 1024 && step.after.is_none() {
                step.after(Cue::returned("client", last_send));
            }
        }
        server.step("s.close()", "s", Call::Close);
        Plan {
            roles: vec![server, client],
            outside: Vec::new(),
        }
    },
};

pub(super) const PORT_UNREACHABLE: Scenario = Scenario {
    id: "port-unreachable",
    title: "A datagram to a closed port",
    summary: "The client sends a datagram where no socket is bound. UDP has no handshake, so \
              send() succeeds: the datagram leaves. The kernel at the other end has no socket \
              for the port and answers with an ICMP port unreachable message; a connected UDP \
              socket hears of it, and its next recv() raises ConnectionRefusedError \
              (ECONNREFUSED). The packets show both.",
    outside: &[],
    plan: |setup| {
        let host = setup.host;
        let port = setup.port;
        let mut client = RolePlan::new(
            "client",
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(('{host}', {port}))  # Socket Lab: nothing is bound to this port in this run
s.send(b'Anyone there?')
try:
    s.recv(1024)
except ConnectionRefusedError as e:
    print('recv:', e)
s.close()
"
            ),
        );
        client.step("s = socket.socket", "s", udp());
        client.step(
            "s.connect",
            "s",
            Call::Connect {
                address: setup.server(),
            },
        );
        client.step(
            "s.send",
            "s",
            Call::Send {
                data: bytes("Anyone there?"),
            },
        );
        client
            .step("s.recv", "s", Call::Recv { bufsize: 1024 })
            .handled();
        client.step("s.close()", "s", Call::Close);
        Plan {
            roles: vec![client],
            outside: Vec::new(),
        }
    },
};
