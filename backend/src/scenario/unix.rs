//! Unix domain scenarios: the same calls, with file names instead of host and port.

use shared::{Call, Family, SockAddr, SockType};

use super::{Cue, Plan, RolePlan, Scenario, bytes};

fn unix(sock_type: SockType) -> Call {
    Call::Socket {
        family: Family::Unix,
        sock_type,
    }
}

pub(super) const UNIX_STREAM: Scenario = Scenario {
    id: "unix-stream",
    title: "Unix domain stream sockets",
    summary: "AF_UNIX sockets connect programs on the same machine through a name in the file \
              system. bind() creates the socket file; connect() names the same path. \
              Everything else is as with TCP: listen, accept, send and recv. The client never \
              binds, so the server sees its address as '' (no name).",
    outside: &[],
    plan: |setup| {
        let path = setup.path("server.sock");
        let path_text = setup.path_text("server.sock");
        let mut server = RolePlan::new(
            "server",
            format!(
                "import socket

path = '{path_text}'  # Socket Lab: inside this run's own directory
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)  # creates the socket file
s.listen(1)
con, addr = s.accept()
print('Connected by', repr(addr))
data = con.recv(1024)
con.sendall(data.upper())
con.close()
s.close()  # Socket Lab removes the socket file when the run ends
"
            ),
        );
        server.serves(unix(SockType::Stream), &path, Some(1));
        let accept = server.accepts();
        server.step("con.recv", "con", Call::Recv { bufsize: 1024 });
        server.step(
            "con.sendall",
            "con",
            Call::Sendall {
                data: bytes("HELLO OVER A UNIX SOCKET"),
            },
        );
        server.step("con.close()", "con", Call::Close);
        server.step("s.close()", "s", Call::Close);

        let mut client = RolePlan::new(
            "client",
            format!(
                "import socket

path = '{path_text}'  # Socket Lab: the server's socket file in this run
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(b'Hello over a Unix socket')
print(s.recv(1024))
s.close()
"
            ),
        )
        .starts(Cue::entered("server", accept));
        client.connects(unix(SockType::Stream), &path);
        client.step(
            "s.sendall",
            "s",
            Call::Sendall {
                data: bytes("Hello over a Unix socket"),
            },
        );
        client.step("s.recv", "s", Call::Recv { bufsize: 1024 });
        client.step("s.close()", "s", Call::Close);
        Plan {
            roles: vec![server, client],
            outside: Vec::new(),
        }
    },
};

pub(super) const UNIX_DGRAM: Scenario = Scenario {
    id: "unix-dgram",
    title: "Unix domain datagrams",
    summary: "AF_UNIX with SOCK_DGRAM: datagrams between programs on one machine, reliable \
              and in order, unlike UDP. The server binds a path; the client binds a name in \
              Linux's abstract namespace (it starts with a NUL byte and makes no file), \
              because a datagram socket without a name could not be answered.",
    outside: &[],
    plan: |setup| {
        let path = setup.path("server.sock");
        let path_text = setup.path_text("server.sock");
        let client_name = format!("{}client", setup.abstract_prefix);
        let mut server = RolePlan::new(
            "server",
            format!(
                "import socket

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('{path_text}')  # Socket Lab: inside this run's own directory
data, addr = s.recvfrom(1024)
print('Datagram from', addr)
s.sendto(data, addr)
s.close()
"
            ),
        );
        server.serves(unix(SockType::Dgram), &path, None);
        server.step("s.recvfrom", "s", Call::Recvfrom { bufsize: 1024 });
        let recvfrom = server.last();
        server
            .step(
                "s.sendto",
                "s",
                Call::Sendto {
                    data: bytes(""),
                    address: path.clone(),
                },
            )
            .echo();
        server.step("s.close()", "s", Call::Close);

        let mut client = RolePlan::new(
            "client",
            format!(
                "import socket

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0{client_name}')  # an abstract name: no file, and now it can be answered
s.sendto(b'Hello, datagram', '{path_text}')
data, addr = s.recvfrom(1024)
print(data)
s.close()
"
            ),
        )
        .starts(Cue::entered("server", recvfrom));
        client.step("s = socket.socket", "s", unix(SockType::Dgram));
        client.step(
            "s.bind",
            "s",
            Call::Bind {
                address: SockAddr::Unix {
                    path: client_name,
                    r#abstract: true,
                },
            },
        );
        client.step(
            "s.sendto",
            "s",
            Call::Sendto {
                data: bytes("Hello, datagram"),
                address: path,
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
