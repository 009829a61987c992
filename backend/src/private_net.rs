//! `watch --private-net`: one network of Socket Lab's own for a user's watched programs,
//! shared by every `watch --private-net` of that user running at the same time, so that a
//! student's server and client, watched in two terminals, see each other on 127.0.0.1 and
//! reach nothing else, and every packet between them can be captured.
//!
//! A network namespace lives while a process is in it or a descriptor holds it, and an
//! ordinary user may make one only inside a user namespace of their own. So the first
//! `watch --private-net` starts a **holder** (this binary again, `private-net-holder`, in a
//! process group of its own and no longer its child): it enters a new user namespace (its
//! user and group mapped to themselves, so the programs keep their own ids), makes a
//! network namespace there with its loopback up, and listens on `private-net.sock` beside
//! the hand-in socket (in the directory only the user can enter). Every `watch
//! --private-net`, the first included, connects and gets three descriptors over
//! `SCM_RIGHTS`: the user namespace, the network namespace and a packet socket opened in it.
//! The launcher enters the two namespaces (`setns`) before it executes the program, which
//! then lives, with its children, in the shared network; the `watch` process itself stays
//! in the machine's network (its page and the hub are there). The holder ends when its last
//! member's connection closes, so nothing is left once the last watched program has ended.
//!
//! Starting and joining happen under a lock file, so two `watch`es started at the same
//! moment join one network rather than making two.

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sched::CloneFlags;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// The hidden subcommand that runs the holder.
pub(crate) const HOLDER_COMMAND: &str = "private-net-holder";

/// How long a holder waits for its first member before it gives up.
const FIRST_MEMBER_WAIT: Duration = Duration::from_secs(10);

/// How long a `watch` waits for the holder it started to say it is ready.
const START_WAIT: Duration = Duration::from_secs(5);

/// The holder's first words on its standard output once it listens.
const READY: &str = "ready";

/// A member's share of the private network.
#[derive(Debug)]
pub(crate) struct PrivateNet {
    user_namespace: OwnedFd,
    network_namespace: OwnedFd,
    /// The network's packet socket (`AF_PACKET`, every protocol), or why there is none.
    packets: Option<Result<OwnedFd, String>>,
    /// Held while this `watch` takes part: the holder ends once every member's has closed.
    _membership: UnixStream,
}

/// Where the holder listens: beside the hand-in socket.
fn socket_path() -> PathBuf {
    crate::hub::handin::default_path().with_file_name("private-net.sock")
}

impl PrivateNet {
    /// Joins the user's private network, starting its holder when none runs.
    pub(crate) fn join() -> Result<PrivateNet, String> {
        if std::env::var_os(crate::netns::NETNS_ENV).is_some_and(|value| value == "off") {
            return Err(format!(
                "--private-net needs a network of Socket Lab's own, and {}=off turns them off",
                crate::netns::NETNS_ENV
            ));
        }
        let path = socket_path();
        crate::hub::handin::private_dir(&path)
            .map_err(|error| format!("cannot make the directory of {}: {error}", path.display()))?;
        let lock_path = path.with_file_name("private-net.lock");
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|error| format!("cannot open {}: {error}", lock_path.display()))?;
        // Released when `_lock` goes, at the end of this function: by then this `watch` is a
        // member, so the holder cannot end between its start and the join.
        let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, error)| format!("cannot lock {}: {error}", lock_path.display()))?;
        let stream = match UnixStream::connect(&path) {
            Ok(stream) => stream,
            Err(_) => {
                start_holder(&path)?;
                UnixStream::connect(&path).map_err(|error| {
                    format!(
                        "the private network's holder does not answer at {}: {error}",
                        path.display()
                    )
                })?
            }
        };
        receive_share(stream)
    }

    /// Takes the network's packet socket (once), or says why there is none.
    pub(crate) fn take_packet_socket(&mut self) -> Result<OwnedFd, String> {
        self.packets
            .take()
            .unwrap_or_else(|| Err("the packet socket was already taken".to_owned()))
    }

    /// Enters the private network: the user namespace, then the network namespace. Call in
    /// the launcher, a one-thread process, before it executes the program.
    pub(crate) fn enter(&self) -> Result<(), String> {
        nix::sched::setns(self.user_namespace.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(
            |error| format!("cannot enter the private network's user namespace: {error}"),
        )?;
        nix::sched::setns(self.network_namespace.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|error| format!("cannot enter the private network: {error}"))
    }
}

/// Starts a holder listening at `path` and waits until it says it is ready.
fn start_holder(path: &Path) -> Result<(), String> {
    // A socket file left by a holder that was killed.
    let _ = std::fs::remove_file(path);
    let program = std::env::current_exe()
        .map_err(|error| format!("cannot find this program to start the network: {error}"))?;
    let mut child = Command::new(program)
        .arg(HOLDER_COMMAND)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Ctrl-C in the terminal goes to the terminal's process group: the holder must not
        // end before the programs that live in its network.
        .process_group(0)
        .spawn()
        .map_err(|error| format!("cannot start the private network: {error}"))?;
    let Some(stdout) = child.stdout.take() else {
        return Err("the private network's holder has no output".to_owned());
    };
    // The holder forks and its first process exits at once, so the holder is never this
    // process's child (a tracer that waits for any child must not meet it). No thread is
    // started to wait: the program is forked from this process next, and must be its only
    // thread's copy.
    let mut waiting = [nix::poll::PollFd::new(
        stdout.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let timeout =
        nix::poll::PollTimeout::try_from(START_WAIT).unwrap_or(nix::poll::PollTimeout::MAX);
    let answer = match nix::poll::poll(&mut waiting, timeout) {
        Ok(0) | Err(_) => Err(()),
        Ok(_) => {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            Ok(line)
        }
    };
    let _ = child.wait();
    match answer {
        Ok(line) if line.trim_end() == READY => Ok(()),
        Ok(line) if !line.trim().is_empty() => Err(line.trim_end().to_owned()),
        Ok(_) => Err("the private network's holder ended without a word".to_owned()),
        Err(_) => Err("the private network's holder did not start in time".to_owned()),
    }
}

/// The holder's greeting to a member: `ok`, `ok packets off: WHY`, or `error: WHY`, with
/// the descriptors (user namespace, network namespace, packet socket) that `ok` carries.
fn receive_share(stream: UnixStream) -> Result<PrivateNet, String> {
    stream
        .set_read_timeout(Some(START_WAIT))
        .map_err(|error| error.to_string())?;
    let mut text = [0u8; 512];
    let mut iov = [io::IoSliceMut::new(&mut text)];
    let mut space = nix::cmsg_space!([RawFd; 3]);
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|error| format!("the private network's holder did not answer: {error}"))?;
    let mut fds = Vec::new();
    for control in message.cmsgs().map_err(|error| error.to_string())? {
        if let ControlMessageOwned::ScmRights(received) = control {
            fds.extend(received.into_iter().map(owned));
        }
    }
    let length = message.bytes;
    let said = String::from_utf8_lossy(&text[..length]).into_owned();
    if let Some(why) = said.strip_prefix("error: ") {
        return Err(format!("the private network could not be made: {why}"));
    }
    if !said.starts_with("ok") || fds.len() < 2 {
        return Err(format!(
            "the private network's holder answered {said:?} with {} descriptors",
            fds.len()
        ));
    }
    let mut fds = fds.into_iter();
    let (Some(user_namespace), Some(network_namespace)) = (fds.next(), fds.next()) else {
        unreachable!("two descriptors at least were checked for");
    };
    let packets = match (said.strip_prefix("ok packets off: "), fds.next()) {
        (Some(why), _) => Err(format!("could not open a packet socket: {why}")),
        (None, Some(socket)) => Ok(socket),
        (None, None) => Err("the holder sent no packet socket".to_owned()),
    };
    stream
        .set_read_timeout(None)
        .map_err(|error| error.to_string())?;
    Ok(PrivateNet {
        user_namespace,
        network_namespace,
        packets: Some(packets),
        _membership: stream,
    })
}

#[allow(unsafe_code)] // Descriptors received with SCM_RIGHTS are new and ours alone.
fn owned(fd: RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the kernel just made this descriptor for this process, and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The holder's life (`socket-lab private-net-holder PATH`): makes the network, listens at
/// `path`, hands each member its share, and ends with its last member. Returns the exit
/// status.
pub(crate) fn hold(path: &Path) -> i32 {
    // Run from a fresh process: one thread, so it may enter a user namespace. Its first
    // process exits at once (its parent, the `watch` that started it, reaps it), and the
    // holder is the second: an orphan that init reaps, never a `watch`'s child.
    #[allow(unsafe_code)] // A fork of a one-thread process.
    // SAFETY: this process has one thread (the holder command runs before anything starts).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(error) => {
            let _ = writeln!(io::stdout(), "cannot start the private network: {error}");
            return 1;
        }
    }
    let (listener, user_namespace, network_namespace) = match make_network(path) {
        Ok(made) => made,
        Err(why) => {
            let _ = writeln!(io::stdout(), "{why}");
            return 1;
        }
    };
    // The last words on standard output: the `watch` that started the holder reads this
    // line and no more.
    let _ = writeln!(io::stdout(), "{READY}").and_then(|()| io::stdout().flush());
    serve_members(&listener, path, &user_namespace, &network_namespace);
    0
}

/// Enters a new user namespace (mapping this user and group to themselves) and a new network
/// namespace with its loopback up, then listens at `path`.
fn make_network(path: &Path) -> Result<(UnixListener, OwnedFd, OwnedFd), String> {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(|error| {
        format!(
            "this system does not let an ordinary user make a user namespace ({error}); see the \
             README's \"Packets\" for how to allow it"
        )
    })?;
    // A group map needs setgroups denied first (user_namespaces(7)).
    let maps = [
        ("/proc/self/uid_map", format!("{uid} {uid} 1\n")),
        ("/proc/self/setgroups", "deny\n".to_owned()),
        ("/proc/self/gid_map", format!("{gid} {gid} 1\n")),
    ];
    for (file, line) in maps {
        std::fs::write(file, line)
            .map_err(|error| format!("cannot write {file} for the private network: {error}"))?;
    }
    nix::sched::unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|error| format!("cannot make a network namespace: {error}"))?;
    crate::netns::loopback_up()
        .map_err(|error| format!("cannot bring the private network's loopback up: {error}"))?;
    let open = |file: &str| {
        std::fs::File::open(file)
            .map(OwnedFd::from)
            .map_err(|error| format!("cannot open {file}: {error}"))
    };
    let user_namespace = open("/proc/self/ns/user")?;
    let network_namespace = open("/proc/self/ns/net")?;
    let listener = UnixListener::bind(path)
        .map_err(|error| format!("cannot listen at {}: {error}", path.display()))?;
    Ok((listener, user_namespace, network_namespace))
}

/// Hands each member its share and keeps its connection; ends when the last has closed (or
/// none came in time), removing the socket file first, under the lock, so that a `watch`
/// joining at that moment starts a new holder rather than finding a closing one.
fn serve_members(
    listener: &UnixListener,
    path: &Path,
    user_namespace: &OwnedFd,
    network_namespace: &OwnedFd,
) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let lock_path = path.with_file_name("private-net.lock");
    let mut members: Vec<UnixStream> = Vec::new();
    let first_wait = PollTimeout::try_from(FIRST_MEMBER_WAIT).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        fds.extend(
            members
                .iter()
                .map(|member| PollFd::new(member.as_fd(), PollFlags::POLLIN)),
        );
        let timeout = if members.is_empty() {
            first_wait
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let newcomer = fds[0].any().unwrap_or(false);
        // A member's connection says nothing after its greeting: readable means closed.
        let gone: Vec<usize> = fds[1..]
            .iter()
            .enumerate()
            .filter(|(_, fd)| fd.any().unwrap_or(true))
            .map(|(index, _)| index)
            .collect();
        for index in gone.into_iter().rev() {
            members.remove(index);
        }
        if newcomer && let Ok((stream, _)) = listener.accept() {
            if let Some(member) = welcome(stream, user_namespace, network_namespace) {
                members.push(member);
            }
            continue;
        }
        if members.is_empty() && !newcomer {
            // The last member left (or none came): end, unless one is joining right now
            // (it holds the lock while it connects; its connection shows at the next poll).
            let Ok(lock_file) = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
            else {
                let _ = std::fs::remove_file(path);
                return;
            };
            let Ok(_lock) =
                nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            else {
                continue;
            };
            let mut waiting = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            if poll(&mut waiting, PollTimeout::ZERO).unwrap_or(0) > 0 {
                continue;
            }
            let _ = std::fs::remove_file(path);
            return;
        }
    }
}

/// Sends a new member its share; `None` when it is another user's or has gone.
fn welcome(
    stream: UnixStream,
    user_namespace: &OwnedFd,
    network_namespace: &OwnedFd,
) -> Option<UnixStream> {
    // The directory is the user's alone; a peer of another uid is refused all the same.
    let peer =
        nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    if peer.uid() != nix::unistd::getuid().as_raw() {
        return None;
    }
    let packets = socket2::Socket::new(
        socket2::Domain::PACKET,
        socket2::Type::RAW.cloexec(),
        Some(i32::from((libc::ETH_P_ALL as u16).to_be()).into()),
    );
    let (said, fds): (String, Vec<RawFd>) = match &packets {
        Ok(socket) => (
            "ok".to_owned(),
            vec![
                user_namespace.as_raw_fd(),
                network_namespace.as_raw_fd(),
                socket.as_raw_fd(),
            ],
        ),
        Err(error) => (
            format!("ok packets off: {error}"),
            vec![user_namespace.as_raw_fd(), network_namespace.as_raw_fd()],
        ),
    };
    let iov = [io::IoSlice::new(said.as_bytes())];
    let rights = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &rights,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .ok()?;
    Some(stream)
}
