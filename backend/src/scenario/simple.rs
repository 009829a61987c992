//! The tutorial's Simple Server and Simple Client.

use shared::{Bytes, Call, Family, SockAddr, SockType};

use super::{Plan, RolePlan, RunSetup, Scenario, Start, Step};

/// The tutorial's port.
const PORT: u16 = 12345;

pub(super) const SCENARIO: Scenario = Scenario {
    id: "simple-server-client",
    title: "Simple Server and Simple Client",
    summary: "The tutorial's first programs over TCP (AF_INET, SOCK_STREAM). The server binds \
              port 12345, listens, and waits in accept(); the client connects, which the kernel \
              completes on its own, and waits in recv(). The server's accept() returns a new \
              socket for the connection, sends 'Connection is successful' on it and closes it; \
              the client's recv() returns those bytes. Where the tutorial's server loops \
              forever, this one serves one client and ends.",
    plan,
};

fn plan(setup: &RunSetup) -> Plan {
    let host = setup.host;
    let server_address = SockAddr::Inet { host, port: PORT };
    let server_code = format!(
        "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
host = socket.gethostname()
host = '{host}'  # Socket Lab: this run's own loopback address
port = {PORT}
s.bind((host, port))
s.listen(5)
while True:
    con, addr = s.accept()
    print('Connecting with', addr)
    con.send(b'Connection is successful')
    con.close()
    break  # Socket Lab: one client, then the program ends
"
    );
    let client_code = format!(
        "import socket

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
host = socket.gethostname()
host = '{host}'  # Socket Lab: the server's loopback address in this run
port = {PORT}
s.connect((host, port))
print(s.recv(1024))
s.close()
"
    );
    let step = |line, socket, call| Step {
        line,
        socket,
        call,
        assigns: None,
    };
    let new_socket = Call::Socket {
        family: Family::Inet,
        sock_type: SockType::Stream,
    };
    let server_steps = vec![
        step(3, "s", new_socket.clone()),
        step(4, "s", Call::Gethostname),
        step(
            7,
            "s",
            Call::Bind {
                address: server_address.clone(),
            },
        ),
        step(8, "s", Call::Listen { backlog: 5 }),
        Step {
            assigns: Some("con"),
            ..step(10, "s", Call::Accept)
        },
        step(
            12,
            "con",
            Call::Send {
                data: Bytes(b"Connection is successful".to_vec()),
            },
        ),
        step(13, "con", Call::Close),
    ];
    let accept_step = 4;
    let client_steps = vec![
        step(3, "s", new_socket),
        step(4, "s", Call::Gethostname),
        step(
            7,
            "s",
            Call::Connect {
                address: server_address,
            },
        ),
        step(8, "s", Call::Recv { bufsize: 1024 }),
        step(9, "s", Call::Close),
    ];
    Plan {
        roles: vec![
            RolePlan {
                role: "server",
                code: server_code,
                start: Start::Now,
                steps: server_steps,
            },
            RolePlan {
                role: "client",
                code: client_code,
                start: Start::AfterEntered {
                    role: 0,
                    step: accept_step,
                },
                steps: client_steps,
            },
        ],
    }
}
