//! The tutorial's Simple Server and Simple Client.

use shared::{Call, Family, SockAddr, SockType};

use super::{Cue, Plan, RolePlan, RunSetup, Scenario, bytes};

pub(super) const SIMPLE_SERVER_CLIENT: Scenario = Scenario {
    id: "simple-server-client",
    title: "Simple Server and Simple Client",
    summary: "The tutorial's first programs over TCP (AF_INET, SOCK_STREAM). The server binds \
              port 12345, listens, and waits in accept(); the client connects, which the kernel \
              completes on its own, and waits in recv(). The server's accept() returns a new \
              socket for the connection, sends 'Connection is successful' on it and closes it; \
              the client's recv() returns those bytes. Where the tutorial's server loops \
              forever, this one serves one client and ends.",
    outside: &["server", "client"],
    plan,
};

/// Where the server listens, and the line each program (server, client) has after the
/// tutorial's `host = socket.gethostname()` where the run cannot use that name's address:
/// none in a network of the run's own when the machine's name stands for a loopback address,
/// which that network has; else the run's own address, with a comment that says why.
fn server_address(setup: &RunSetup) -> (SockAddr, String, String) {
    let host = setup.host;
    if setup.alone {
        match crate::hostname::loopback_address() {
            Ok((_, address)) => {
                let address = SockAddr::Inet {
                    host: address,
                    port: setup.port,
                };
                return (address, String::new(), String::new());
            }
            Err(why) => {
                tracing::info!(%why, "the Simple Server binds 127.0.0.1, not the machine's name");
                let line = format!(
                    "host = '{host}'  # Socket Lab: the machine's name is no loopback address here\n"
                );
                return (setup.server(), line.clone(), line);
            }
        }
    }
    if host == std::net::Ipv4Addr::LOCALHOST {
        // A run that meets an outside program: both use 127.0.0.1, as its instructions say.
        let line = format!("host = '{host}'  # Socket Lab: where your own program looks\n");
        return (setup.server(), line.clone(), line);
    }
    (
        setup.server(),
        format!("host = '{host}'{}\n", setup.own_address_note()),
        format!("host = '{host}'{}\n", setup.server_address_note()),
    )
}

fn plan(setup: &RunSetup) -> Plan {
    let port = setup.port;
    let (address, server_host, client_host) = server_address(setup);
    let tcp = Call::Socket {
        family: Family::Inet,
        sock_type: SockType::Stream,
    };
    let mut server = RolePlan::new(
        "server",
        format!(
            "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
host = socket.gethostname()
{server_host}port = {port}
s.bind((host, port))
s.listen(5)
while True:
    con, addr = s.accept()
    print('Connecting with', addr)
    con.send(b'Connection is successful')
    con.close()
    break  # Socket Lab: one client, then the program ends
"
        ),
    );
    server.step("s = socket.socket", "s", tcp.clone());
    server.step("gethostname", "s", Call::Gethostname);
    server.step(
        "s.bind",
        "s",
        Call::Bind {
            address: address.clone(),
        },
    );
    server.step("s.listen", "s", Call::Listen { backlog: 5 });
    let accept = server.accepts();
    server.step(
        "con.send",
        "con",
        Call::Send {
            data: bytes("Connection is successful"),
        },
    );
    server.step("con.close()", "con", Call::Close);

    let mut client = RolePlan::new(
        "client",
        format!(
            "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
host = socket.gethostname()
{client_host}port = {port}
s.connect((host, port))
print(s.recv(1024))
s.close()
"
        ),
    )
    .starts(Cue::entered("server", accept));
    client.step("s = socket.socket", "s", tcp);
    client.step("gethostname", "s", Call::Gethostname);
    client.step("s.connect", "s", Call::Connect { address });
    client.step("s.recv", "s", Call::Recv { bufsize: 1024 });
    client.step("s.close()", "s", Call::Close);
    Plan {
        roles: vec![server, client],
        outside: Vec::new(),
    }
}
