//! What the machine's name stands for, as the tutorial's `s.bind((socket.gethostname(),
//! 12345))` finds it: the first IPv4 address `getaddrinfo` gives for the name, as Python's
//! `bind` asks it. A scenario shows the tutorial's code as written only where that address is
//! a loopback one, which a run's own network has (`scenario/simple.rs`).

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::sync::{Once, OnceLock};
use std::time::Duration;

/// How long a run waits for the name to be looked up the first time. Where the name is in
/// `/etc/hosts` this takes microseconds; where it goes to a DNS server that does not answer,
/// the run does not wait for the resolver's own timeouts, and the lookup finishes unwatched.
const LOOKUP_WAIT: Duration = Duration::from_secs(1);

/// The machine's name and the loopback address it stands for, or why it stands for none.
pub(crate) type Lookup = Result<(String, Ipv4Addr), String>;

static LOOKED_UP: OnceLock<Lookup> = OnceLock::new();
static STARTED: Once = Once::new();

/// The machine's name and the loopback address it stands for, looked up once per process
/// (the name of a running machine does not change under a lab), or why the tutorial's
/// `(socket.gethostname(), 12345)` cannot be bound in a run's own network. The first call
/// waits for the lookup at most [`LOOKUP_WAIT`]; one lookup runs, however many runs ask.
pub(crate) fn loopback_address() -> Lookup {
    if let Some(known) = LOOKED_UP.get() {
        return known.clone();
    }
    let (sender, receiver) = mpsc::channel();
    let mut first = false;
    STARTED.call_once(|| {
        first = true;
        let looking = std::thread::Builder::new()
            .name("hostname".to_owned())
            .spawn(move || {
                let found = LOOKED_UP.get_or_init(look_up).clone();
                let _ = sender.send(found);
            });
        if let Err(error) = looking {
            let _ = LOOKED_UP.set(Err(format!(
                "the machine's name could not be looked up: {error}"
            )));
        }
    });
    if !first {
        return LOOKED_UP
            .get()
            .cloned()
            .unwrap_or_else(|| Err("the machine's name is still being looked up".to_owned()));
    }
    receiver.recv_timeout(LOOKUP_WAIT).unwrap_or_else(|_| {
        LOOKED_UP.get().cloned().unwrap_or_else(|| {
            Err(format!(
                "looking up the machine's name took more than {} s",
                LOOKUP_WAIT.as_secs()
            ))
        })
    })
}

/// Looks the name up as Python's `bind((name, port))` does (getaddrinfo, IPv4).
fn look_up() -> Lookup {
    let name = nix::unistd::gethostname()
        .map_err(|errno| format!("gethostname() failed: {errno}"))?
        .to_string_lossy()
        .into_owned();
    let addresses = (name.as_str(), 0)
        .to_socket_addrs()
        .map_err(|error| format!("this machine's name, '{name}', has no address ({error})"))?;
    let first = addresses.into_iter().find_map(|address| match address {
        SocketAddr::V4(v4) => Some(*v4.ip()),
        SocketAddr::V6(_) => None,
    });
    loopback_of(name, first)
}

/// The verdict on the name's first IPv4 address.
fn loopback_of(name: String, first: Option<Ipv4Addr>) -> Lookup {
    match first {
        Some(address) if address.is_loopback() => Ok((name, address)),
        Some(address) => Err(format!(
            "this machine's name, '{name}', is {address}, which is not a loopback address, \
             and a run's own network has only its loopback"
        )),
        None => Err(format!(
            "this machine's name, '{name}', has no IPv4 address"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_address_will_do() {
        assert_eq!(
            loopback_of("vm".into(), Some(Ipv4Addr::new(127, 0, 1, 1))),
            Ok(("vm".to_owned(), Ipv4Addr::new(127, 0, 1, 1)))
        );
        let lan = loopback_of("lab-pc".into(), Some(Ipv4Addr::new(10, 1, 2, 3))).unwrap_err();
        assert!(
            lan.contains("'lab-pc', is 10.1.2.3, which is not a loopback"),
            "{lan}"
        );
        let none = loopback_of("lab-pc".into(), None).unwrap_err();
        assert!(none.contains("no IPv4 address"), "{none}");
    }

    /// The lookup agrees with the C library's, which Python's `bind` uses: `getent ahostsv4`
    /// asks getaddrinfo for the name's IPv4 addresses the same way.
    #[test]
    fn the_name_stands_for_what_getaddrinfo_says() {
        let name = nix::unistd::gethostname()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let getent = std::process::Command::new("getent")
            .args(["ahostsv4", &name])
            .output()
            .expect("getent runs");
        let first = String::from_utf8_lossy(&getent.stdout)
            .split_whitespace()
            .next()
            .and_then(|word| word.parse::<Ipv4Addr>().ok());
        match (loopback_address(), first) {
            (Ok((found_name, address)), Some(first)) => {
                assert_eq!((found_name, address), (name, first));
            }
            (Err(why), first) => assert!(
                first.is_none_or(|address| !address.is_loopback()),
                "getent finds {first:?} for '{name}', but the lookup says: {why}"
            ),
            (Ok(found), None) => panic!("getent finds nothing for '{name}', the lookup {found:?}"),
        }
    }
}
