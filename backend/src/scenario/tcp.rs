//! TCP scenarios: echo over IPv4 and IPv6, a listener's queue, a byte stream, half-close,
//! and what goes wrong (refused, address in use, reset, non-blocking calls).

use std::net::Ipv6Addr;

use shared::{Call, Family, SockAddr, SockOption, SockType};

use super::{Cue, Plan, RolePlan, RunSetup, Scenario, bytes};

fn tcp(family: Family) -> Call {
    Call::Socket {
        family,
        sock_type: SockType::Stream,
    }
}

pub(super) const TCP_ECHO: Scenario = Scenario {
    id: "tcp-echo",
    title: "TCP echo server",
    summary: "A server that sends back whatever it receives, until the client closes. The \
              client sends two messages with sendall() and reads each echo with recv(); the \
              server loops on recv() and stops when recv() returns b'' (the client closed). \
              getpeername() shows the client's address and the port the kernel chose for it.",
    outside: &["server", "client"],
    plan: |setup| {
        let address = setup.server();
        let host = format!("'{}', {}", setup.host, setup.port);
        echo_plan(
            Family::Inet,
            &host,
            &address,
            (setup.own_address_note(), setup.server_address_note()),
        )
    },
};

pub(super) const IPV6_ECHO: Scenario = Scenario {
    id: "ipv6-echo",
    title: "TCP echo over IPv6",
    summary: "The echo server and client again, with AF_INET6 on the loopback address ::1. \
              Only the family and the address change: an IPv6 address is a 4-tuple (host, \
              port, flowinfo, scope_id), as getpeername() shows. A run in a network of \
              its own uses port 12345; on the machine's network, which has one IPv6 loopback \
              address for every run, it uses a port the kernel had free instead.",
    outside: &[],
    plan: |setup| {
        let port = setup.port6();
        let address = SockAddr::Inet6 {
            host: Ipv6Addr::LOCALHOST,
            port,
            flowinfo: 0,
            scope_id: 0,
        };
        let host = format!("'::1', {port}");
        let notes = if setup.alone {
            ("", "")
        } else {
            (
                "  # Socket Lab: a port that was free for this run",
                "  # Socket Lab: the server's address in this run",
            )
        };
        echo_plan(Family::Inet6, &host, &address, notes)
    },
};

/// The echo server and its client, on `address`, written in the programs as `host`, with
/// the comments (`mine`, `theirs`) that say why the address is not the tutorial's, if any.
fn echo_plan(family: Family, host: &str, address: &SockAddr, notes: (&str, &str)) -> Plan {
    let (mine, theirs) = notes;
    let family_name = family.name();
    let mut server = RolePlan::new(
        "server",
        format!(
            "import socket

HOST, PORT = {host}{mine}
s = socket.socket(socket.{family_name}, socket.SOCK_STREAM)
s.bind((HOST, PORT))
s.listen(1)
con, addr = s.accept()
print('Connected by', con.getpeername())
while True:
    data = con.recv(1024)
    if not data:
        break
    con.sendall(data)
con.close()
s.close()
"
        ),
    );
    server.serves(tcp(family), address, Some(1));
    let accept = server.accepts();
    server.step("getpeername", "con", Call::Getpeername);
    // while True: data = con.recv(1024); if not data: break; con.sendall(data)
    server.step("con.recv", "con", Call::Recv { bufsize: 1024 });
    let first = server.last();
    server
        .step("con.sendall", "con", Call::Sendall { data: bytes("") })
        .echo();
    server.loop_ = Some(super::Loop {
        first,
        last: server.last(),
    });
    server.step("con.close()", "con", Call::Close);
    server.step("s.close()", "s", Call::Close);

    let mut client = RolePlan::new(
        "client",
        format!(
            "import socket

HOST, PORT = {host}{theirs}
s = socket.socket(socket.{family_name}, socket.SOCK_STREAM)
s.connect((HOST, PORT))
for message in [b'Hello, server', b'Echo this back']:
    s.sendall(message)
    print('Received', s.recv(1024))
s.close()
"
        ),
    )
    .starts(Cue::entered("server", accept));
    client.connects(tcp(family), address);
    for message in ["Hello, server", "Echo this back"] {
        client.step(
            "s.sendall",
            "s",
            Call::Sendall {
                data: bytes(message),
            },
        );
        client.step("s.recv", "s", Call::Recv { bufsize: 1024 });
    }
    client.step("s.close()", "s", Call::Close);
    Plan {
        roles: vec![server, client],
        outside: Vec::new(),
    }
}

pub(super) const MULTIPLE_CLIENTS: Scenario = Scenario {
    id: "multiple-clients",
    title: "Several clients and the accept queue",
    summary: "Three clients connect before the server calls accept(). Each connect() returns \
              at once: the kernel completes the handshake for the listener by itself and \
              queues the connection, as the listener's accept queue shows (3 waiting, backlog \
              5). Then each accept() takes one connection off the queue and returns a new \
              socket of its own for it, with its own address pair.",
    outside: &[],
    plan: multiple_clients,
};

fn multiple_clients(setup: &RunSetup) -> Plan {
    let host = setup.host;
    let port = setup.port;
    let (mine, theirs) = (setup.own_address_note(), setup.server_address_note());
    let mut server = RolePlan::new(
        "server",
        format!(
            "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(('{host}', {port})){mine}
s.listen(5)
input('Start the three clients, then press Enter')  # Socket Lab: waits for their connect()
for n in range(1, 4):
    con, addr = s.accept()
    con.send(b'You are client %d' % n)
    con.close()
s.close()
"
        ),
    );
    server.serves(tcp(Family::Inet), &setup.server(), Some(5));
    let listen = server.last();
    for n in 1..=3 {
        let accept = server.step("s.accept()", "s", Call::Accept).assigns("con");
        if n == 1 {
            accept.after(Cue::returned("client3", 1));
        }
        server.step(
            "con.send",
            "con",
            Call::Send {
                data: bytes(&format!("You are client {n}")),
            },
        );
        server.step("con.close()", "con", Call::Close);
    }
    server.step("s.close()", "s", Call::Close);

    let client = |role: &'static str, start: Cue| {
        let mut client = RolePlan::new(
            role,
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(('{host}', {port})){theirs}
print(s.recv(1024))
s.close()
"
            ),
        )
        .starts(start);
        client.connects(tcp(Family::Inet), &setup.server());
        client.step("s.recv", "s", Call::Recv { bufsize: 1024 });
        client.step("s.close()", "s", Call::Close);
        client
    };
    Plan {
        roles: vec![
            server,
            client("client1", Cue::returned("server", listen)),
            client("client2", Cue::returned("client1", 1)),
            client("client3", Cue::returned("client2", 1)),
        ],
        outside: Vec::new(),
    }
}

pub(super) const BYTE_STREAM: Scenario = Scenario {
    id: "byte-stream",
    title: "TCP is a byte stream",
    summary: "The client sends b'Hello, ' and then b'world!' with two send() calls. The \
              server waits until both have arrived, and one recv() returns b'Hello, world!': \
              TCP keeps no message boundaries. The receive queue holds all 13 bytes before \
              the recv(). Programs that need messages must mark them (a length, a newline).",
    outside: &[],
    plan: |setup| {
        let host = setup.host;
        let port = setup.port;
        let (mine, theirs) = (setup.own_address_note(), setup.server_address_note());
        let mut server = RolePlan::new(
            "server",
            format!(
                "import socket
import time

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(('{host}', {port})){mine}
s.listen(1)
con, addr = s.accept()
time.sleep(1)  # Socket Lab: waits until the client has sent both messages
data = con.recv(1024)
print('One recv() returned', data)
con.close()
s.close()
"
            ),
        );
        let mut client = RolePlan::new(
            "client",
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(('{host}', {port})){theirs}
s.send(b'Hello, ')
s.send(b'world!')
s.close()
"
            ),
        );
        server.serves(tcp(Family::Inet), &setup.server(), Some(1));
        let accept = server.accepts();
        client.connects(tcp(Family::Inet), &setup.server());
        client.step(
            "s.send(b'Hello, ')",
            "s",
            Call::Send {
                data: bytes("Hello, "),
            },
        );
        client.step(
            "s.send(b'world!')",
            "s",
            Call::Send {
                data: bytes("world!"),
            },
        );
        let second_send = client.last();
        client.step("s.close()", "s", Call::Close);
        server
            .step("con.recv", "con", Call::Recv { bufsize: 1024 })
            .after(Cue::returned("client", second_send));
        server.step("con.close()", "con", Call::Close);
        server.step("s.close()", "s", Call::Close);
        let client = client.starts(Cue::entered("server", accept));
        Plan {
            roles: vec![server, client],
            outside: Vec::new(),
        }
    },
};

pub(super) const HALF_CLOSE: Scenario = Scenario {
    id: "half-close",
    title: "Half-close with shutdown()",
    summary: "The client sends its request and calls shutdown(SHUT_WR): its FIN tells the \
              server that no more is coming, while the client can still receive. The server's \
              recv() returns b'' (end of stream) and it answers on the same connection. \
              Watch the TCP states: the client goes FIN_WAIT2 and the server CLOSE_WAIT; once \
              the server closes, the client's end waits in TIME_WAIT.",
    outside: &[],
    plan: |setup| {
        let host = setup.host;
        let port = setup.port;
        let (mine, theirs) = (setup.own_address_note(), setup.server_address_note());
        let mut server = RolePlan::new(
            "server",
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(('{host}', {port})){mine}
s.listen(1)
con, addr = s.accept()
request = b''
while True:
    data = con.recv(1024)
    if not data:
        break  # the client shut down its side: the request is complete
    request += data
con.sendall(b'42')
con.close()
s.close()
"
            ),
        );
        server.serves(tcp(Family::Inet), &setup.server(), Some(1));
        let accept = server.accepts();
        server.step("con.recv", "con", Call::Recv { bufsize: 1024 });
        server.step("con.recv", "con", Call::Recv { bufsize: 1024 });
        server.step("con.sendall", "con", Call::Sendall { data: bytes("42") });
        server.step("con.close()", "con", Call::Close);
        server.step("s.close()", "s", Call::Close);

        let mut client = RolePlan::new(
            "client",
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(('{host}', {port})){theirs}
s.sendall(b'What is the answer?')
s.shutdown(socket.SHUT_WR)  # no more requests; the answer can still come in
while True:
    data = s.recv(1024)
    if not data:
        break
    print('Answer:', data)
s.close()
"
            ),
        )
        .starts(Cue::entered("server", accept));
        client.connects(tcp(Family::Inet), &setup.server());
        client.step(
            "s.sendall",
            "s",
            Call::Sendall {
                data: bytes("What is the answer?"),
            },
        );
        client.step(
            "s.shutdown",
            "s",
            Call::Shutdown {
                how: shared::Shutdown::Write,
            },
        );
        client.step("s.recv", "s", Call::Recv { bufsize: 1024 });
        client.step("s.recv", "s", Call::Recv { bufsize: 1024 });
        client.step("s.close()", "s", Call::Close);
        Plan {
            roles: vec![server, client],
            outside: Vec::new(),
        }
    },
};

pub(super) const CONNECTION_REFUSED: Scenario = Scenario {
    id: "connection-refused",
    title: "Connection refused",
    summary: "The client connects to an address where nothing listens. The kernel answers \
              the SYN with a reset, and connect() raises ConnectionRefusedError \
              (ECONNREFUSED). The program stops there, as an uncaught exception stops it: \
              start the server first.",
    outside: &[],
    plan: |setup| {
        let host = setup.host;
        let port = setup.port;
        let mut client = RolePlan::new(
            "client",
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(('{host}', {port}))  # Socket Lab: nothing listens at this run's address
s.send(b'Hello?')
s.close()
"
            ),
        );
        client.connects(tcp(Family::Inet), &setup.server());
        client.step(
            "s.send",
            "s",
            Call::Send {
                data: bytes("Hello?"),
            },
        );
        client.step("s.close()", "s", Call::Close);
        Plan {
            roles: vec![client],
            outside: Vec::new(),
        }
    },
};

pub(super) const ADDRESS_IN_USE: Scenario = Scenario {
    id: "address-in-use",
    title: "Address already in use, and SO_REUSEADDR",
    summary: "A second server cannot bind the port a listener holds: EADDRINUSE, with or \
              without SO_REUSEADDR. Then the first server serves a client and closes first, \
              so its end of the connection stays in TIME_WAIT for a while, holding the port. \
              A restarted server's bind() fails with EADDRINUSE until it sets SO_REUSEADDR \
              (which the first server had set too, as servers should); then it binds.",
    outside: &[],
    plan: address_in_use,
};

fn address_in_use(setup: &RunSetup) -> Plan {
    let host = setup.host;
    let port = setup.port;
    let (mine, theirs) = (setup.own_address_note(), setup.server_address_note());
    let reuse = || Call::Setsockopt {
        option: SockOption::ReuseAddr(true),
    };
    let mut server = RolePlan::new(
        "server",
        format!(
            "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('{host}', {port})){mine}
s.listen(5)
con, addr = s.accept()
con.sendall(b'Bye')
con.close()  # the server closes first: its end of the connection will wait in TIME_WAIT
s.close()
"
        ),
    );
    server.step("s = socket.socket", "s", tcp(Family::Inet));
    server.step("s.setsockopt", "s", reuse());
    server.step(
        "s.bind",
        "s",
        Call::Bind {
            address: setup.server(),
        },
    );
    server.step("s.listen", "s", Call::Listen { backlog: 5 });
    let listen = server.last();
    server.step("s.accept()", "s", Call::Accept).assigns("con");
    server.step("con.sendall", "con", Call::Sendall { data: bytes("Bye") });
    server.step("con.close()", "con", Call::Close);
    let con_close = server.last();
    server.step("s.close()", "s", Call::Close);
    let s_close = server.last();

    let mut second = RolePlan::new(
        "second",
        format!(
            "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('{host}', {port}))  # the first server is listening here
s.listen(5)
"
        ),
    )
    .starts(Cue::returned("server", listen));
    second.step("s = socket.socket", "s", tcp(Family::Inet));
    second.step("s.setsockopt", "s", reuse());
    second.step(
        "s.bind",
        "s",
        Call::Bind {
            address: setup.server(),
        },
    );
    let second_bind = second.last();
    second.step("s.listen", "s", Call::Listen { backlog: 5 });

    let mut client = RolePlan::new(
        "client",
        format!(
            "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(('{host}', {port})){theirs}
while True:
    data = s.recv(1024)
    if not data:
        break
    print(data)
s.close()
"
        ),
    )
    .starts(Cue::returned("second", second_bind));
    client.connects(tcp(Family::Inet), &setup.server());
    client.step("s.recv", "s", Call::Recv { bufsize: 1024 });
    client
        .step("s.recv", "s", Call::Recv { bufsize: 1024 })
        .after(Cue::returned("server", con_close));
    client.step("s.close()", "s", Call::Close);
    let client_close = client.last();

    let mut restarted = RolePlan::new(
        "restarted",
        format!(
            "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(('{host}', {port}))  # the old connection still holds the port in TIME_WAIT
except OSError as e:
    print(e)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('{host}', {port}))  # allowed now
s.listen(5)
s.close()
"
        ),
    )
    .starts(Cue::returned("client", client_close));
    restarted
        .step("s = socket.socket", "s", tcp(Family::Inet))
        .after(Cue::returned("server", s_close));
    restarted
        .step(
            "TIME_WAIT",
            "s",
            Call::Bind {
                address: setup.server(),
            },
        )
        .handled();
    restarted.step("s.setsockopt", "s", reuse());
    restarted.step(
        "allowed now",
        "s",
        Call::Bind {
            address: setup.server(),
        },
    );
    restarted.step("s.listen", "s", Call::Listen { backlog: 5 });
    restarted.step("s.close()", "s", Call::Close);
    Plan {
        roles: vec![server, second, client, restarted],
        outside: Vec::new(),
    }
}

pub(super) const RESET: Scenario = Scenario {
    id: "reset",
    title: "Connection reset (SO_LINGER 0)",
    summary: "The client sets SO_LINGER to 0 seconds and closes: instead of ending the \
              connection politely with FIN, the kernel sends RST and forgets it at once. The \
              server, waiting in recv(), gets ConnectionResetError (ECONNRESET); its next \
              send() gets BrokenPipeError (EPIPE), because the connection is gone.",
    outside: &[],
    plan: |setup| {
        let host = setup.host;
        let port = setup.port;
        let (mine, theirs) = (setup.own_address_note(), setup.server_address_note());
        let mut server = RolePlan::new(
            "server",
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(('{host}', {port})){mine}
s.listen(1)
con, addr = s.accept()
try:
    data = con.recv(1024)
except ConnectionResetError as e:
    print('recv:', e)
try:
    con.send(b'Anyone there?')
except BrokenPipeError as e:
    print('send:', e)
con.close()
s.close()
"
            ),
        );
        server.serves(tcp(Family::Inet), &setup.server(), Some(1));
        let accept = server.accepts();
        server
            .step("con.recv", "con", Call::Recv { bufsize: 1024 })
            .handled();
        let recv = server.last();
        server
            .step(
                "con.send",
                "con",
                Call::Send {
                    data: bytes("Anyone there?"),
                },
            )
            .handled();
        server.step("con.close()", "con", Call::Close);
        server.step("s.close()", "s", Call::Close);

        let mut client = RolePlan::new(
            "client",
            format!(
                "import socket
import struct

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(('{host}', {port})){theirs}
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
s.close()  # with SO_LINGER 0, close() sends RST instead of FIN
"
            ),
        )
        .starts(Cue::entered("server", accept));
        client.connects(tcp(Family::Inet), &setup.server());
        client.step(
            "s.setsockopt",
            "s",
            Call::Setsockopt {
                option: SockOption::Linger(Some(0)),
            },
        );
        client
            .step("s.close()", "s", Call::Close)
            .after(Cue::entered("server", recv));
        Plan {
            roles: vec![server, client],
            outside: Vec::new(),
        }
    },
};

pub(super) const NONBLOCKING: Scenario = Scenario {
    id: "nonblocking",
    title: "Non-blocking sockets and timeouts",
    summary: "After setblocking(False), a call that would wait fails at once instead: accept() \
              with nobody connecting and recv() with nothing received raise BlockingIOError \
              (EAGAIN), and the program goes on. The client uses settimeout(0.5): its recv() \
              waits half a second for bytes that do not come and raises TimeoutError, then \
              receives the server's message on the next try.",
    outside: &[],
    plan: |setup| {
        let host = setup.host;
        let port = setup.port;
        let (mine, theirs) = (setup.own_address_note(), setup.server_address_note());
        let mut server = RolePlan::new(
            "server",
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(('{host}', {port})){mine}
s.listen(1)
s.setblocking(False)
try:
    con, addr = s.accept()  # nobody has connected yet
except BlockingIOError as e:
    print('accept:', e)
input('Start the client, then press Enter')  # Socket Lab: waits for its connect()
con, addr = s.accept()  # now a connection is queued
con.setblocking(False)
try:
    data = con.recv(1024)  # the client has sent nothing
except BlockingIOError as e:
    print('recv:', e)
input('Press Enter once the client has timed out')  # Socket Lab: waits for its TimeoutError
con.send(b'Hello, patient client')
con.close()
s.close()
"
            ),
        );
        let mut client = RolePlan::new(
            "client",
            format!(
                "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(('{host}', {port})){theirs}
s.settimeout(0.5)
try:
    print(s.recv(1024))  # the server sends nothing yet
except TimeoutError as e:
    print('recv:', e)
print(s.recv(1024))  # this time the bytes come
s.close()
"
            ),
        );
        server.serves(tcp(Family::Inet), &setup.server(), Some(1));
        server.step("s.setblocking", "s", Call::Setblocking { flag: false });
        server
            .step("nobody has connected", "s", Call::Accept)
            .assigns("con")
            .handled();
        let first_accept = server.last();
        client.connects(tcp(Family::Inet), &setup.server());
        let connect = client.last();
        client.step("s.settimeout", "s", Call::Settimeout { millis: Some(500) });
        client
            .step("nothing yet", "s", Call::Recv { bufsize: 1024 })
            .handled();
        let timed_out = client.last();
        client.step("this time", "s", Call::Recv { bufsize: 1024 });
        client.step("s.close()", "s", Call::Close);
        server
            .step("a connection is queued", "s", Call::Accept)
            .assigns("con")
            .after(Cue::returned("client", connect));
        server.step("con.setblocking", "con", Call::Setblocking { flag: false });
        server
            .step("con.recv", "con", Call::Recv { bufsize: 1024 })
            .handled();
        server
            .step(
                "con.send",
                "con",
                Call::Send {
                    data: bytes("Hello, patient client"),
                },
            )
            .after(Cue::returned("client", timed_out));
        server.step("con.close()", "con", Call::Close);
        server.step("s.close()", "s", Call::Close);
        let client = client.starts(Cue::returned("server", first_accept));
        Plan {
            roles: vec![server, client],
            outside: Vec::new(),
        }
    },
};
