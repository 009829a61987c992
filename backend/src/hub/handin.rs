//! Where `watch` hands its program's events to the hub: a Unix socket in a directory only
//! the user can enter, read by the Socket Lab that serves the page.
//!
//! A browser cannot reach a Unix socket, and another user cannot enter the directory (the
//! server also checks each peer's uid), so only the user's own `watch` can add programs to
//! what their page shows; no page can start one.
//!
//! The conversation, one JSON object a line:
//! - `watch` says `{"hello": {"protocol": 7, "command": "python3 server.py"}}`;
//! - the server answers `{"page": "http://127.0.0.1:3000/?watch"}`, the address to open;
//! - `watch` sends `{"event": {...}}`, `{"program": {...}}` and `{"dropped": {...}}` lines
//!   (the page protocol's [`Event`], [`RoleProgram`] and [`Dropped`]), with
//!   `--private-net` `{"packet": {...}}` and `{"capture": {...}}` lines (its [`Packet`]
//!   and [`Capture`], packets timed on the monotonic clock as events are), and last
//!   `{"ended": {"text": "server.py[4242] exited with status 0", "ok": true}}`.
//!
//! A line that cannot be read ends that `watch`'s part (logged); the run goes on.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use shared::{Capture, Dropped, Event, Packet, RoleProgram};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{Hub, Item};

/// The environment variable that names the hand-in socket instead of the default place.
pub(crate) const HUB_ENV: &str = "SOCKET_LAB_HUB";

/// The longest line the server reads: an event with 256 bytes of data three times over and
/// 16 kernel views is a few KiB; a program's source is at most [`MAX_SOURCE`] and escapes.
pub(crate) const MAX_LINE: usize = 4 << 20;

/// The most bytes of a program's source that `watch` sends.
pub(crate) const MAX_SOURCE: usize = 512 * 1024;

/// One line from `watch` to the server.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // Nearly every line is an event; boxing each would cost an allocation.
pub(crate) enum HandIn {
    /// The first line.
    Hello {
        /// The page protocol the events are in.
        protocol: u32,
        /// The watched command line, for the run's title.
        command: String,
    },
    /// An event.
    Event(Event),
    /// A program (a process, a Python file of one).
    Program(RoleProgram),
    /// Events `watch` did not send.
    Dropped(Dropped),
    /// A packet of the private network (`watch --private-net`).
    Packet(Packet),
    /// How `watch`'s capture stands.
    Capture(Capture),
    /// The last line: how the program ended.
    Ended {
        /// In words: `server.py[4242] was killed by SIGSEGV`.
        text: String,
        /// Whether it ended well (status 0).
        ok: bool,
    },
}

/// The server's answer to `hello`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Welcome {
    /// The page that shows the run.
    pub(crate) page: String,
}

/// Where the hand-in socket is: `$SOCKET_LAB_HUB`, or `socket-lab/watch.sock` in the user's
/// runtime directory (`$XDG_RUNTIME_DIR`), or in `/tmp/socket-lab-UID/`.
pub(crate) fn default_path() -> PathBuf {
    if let Some(path) = std::env::var_os(HUB_ENV).filter(|path| !path.is_empty()) {
        return PathBuf::from(path);
    }
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("socket-lab"),
        None => PathBuf::from(format!("/tmp/socket-lab-{}", nix::unistd::geteuid())),
    };
    dir.join("watch.sock")
}

/// Makes the socket's directory, only the user's, or checks that the one there is.
pub(crate) fn private_dir(path: &Path) -> io::Result<()> {
    let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) else {
        return Ok(());
    };
    if let Some(above) = dir.parent() {
        std::fs::create_dir_all(above)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            let meta = std::fs::metadata(dir)?;
            if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0 {
                return Err(io::Error::other(format!(
                    "{} is not a directory of this user's alone (mode {:o}); remove it or set \
                     {HUB_ENV}",
                    dir.display(),
                    meta.mode() & 0o7777
                )));
            }
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// Binds the hand-in socket at `path`, unless another live Socket Lab has it (`None`). A
/// socket file left by one that ended is replaced.
pub(crate) async fn listen(path: &Path) -> io::Result<Option<UnixListener>> {
    private_dir(path)?;
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Ok(None);
        }
        std::fs::remove_file(path)?;
    }
    match UnixListener::bind(path) {
        Ok(listener) => Ok(Some(listener)),
        // Another server bound it between the check and now.
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => Ok(None),
        Err(error) => Err(error),
    }
}

/// Takes `watch`es' hand-ins until `shutdown` says the server stops, then removes the socket.
pub(crate) async fn serve(
    listener: UnixListener,
    path: PathBuf,
    hub: Arc<Hub>,
    page: String,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let me = nix::unistd::geteuid().as_raw();
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(5));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut holding = false;
    loop {
        tokio::select! {
            // Only while events are held does anything need releasing.
            () = hub.held(), if !holding => holding = true,
            _ = ticks.tick(), if holding => holding = hub.tick(),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let uid = stream.peer_cred().map(|cred| cred.uid());
                    if uid.as_ref().is_ok_and(|uid| *uid == me) {
                        tokio::spawn(member(stream, Arc::clone(&hub), page.clone()));
                    } else {
                        tracing::warn!(?uid, "refused a hand-in from another user");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "could not accept a hand-in");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            () = stopping(&mut shutdown) => break,
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Completes once the server starts shutting down (or is gone).
async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

/// Reads one line of at most [`MAX_LINE`] bytes; `None` at the end of the stream.
pub(crate) async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
) -> io::Result<Option<()>> {
    line.clear();
    let read = (&mut *reader)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', line)
        .await?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') && line.len() > MAX_LINE {
        return Err(io::Error::other(format!(
            "a line was longer than {MAX_LINE} bytes"
        )));
    }
    Ok(Some(()))
}

/// One `watch`'s part in a run: its greeting, then its items until it ends.
async fn member(stream: UnixStream, hub: Arc<Hub>, page: String) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    let command = match read_line(&mut reader, &mut line).await {
        Ok(Some(())) => match serde_json::from_slice::<HandIn>(&line) {
            Ok(HandIn::Hello { protocol, command }) if protocol == shared::PROTOCOL_VERSION => {
                command
            }
            Ok(HandIn::Hello { protocol, .. }) => {
                tracing::warn!(protocol, "a watch of another protocol was refused");
                return;
            }
            _ => {
                tracing::warn!("a hand-in did not start with hello");
                return;
            }
        },
        _ => return,
    };
    let welcome = serde_json::to_string(&Welcome { page }).unwrap_or_default() + "\n";
    if write.write_all(welcome.as_bytes()).await.is_err() {
        return;
    }
    let membership = hub.join(&command);
    let mut ending = None;
    loop {
        match read_line(&mut reader, &mut line).await {
            Ok(Some(())) => match serde_json::from_slice::<HandIn>(&line) {
                Ok(HandIn::Event(event)) => hub.publish(membership, Item::Event(event)),
                Ok(HandIn::Program(program)) => hub.publish(membership, Item::Program(program)),
                Ok(HandIn::Dropped(dropped)) => hub.publish(membership, Item::Dropped(dropped)),
                Ok(HandIn::Packet(packet)) => hub.publish(membership, Item::Packet(packet)),
                Ok(HandIn::Capture(capture)) => hub.publish(membership, Item::Capture(capture)),
                Ok(HandIn::Ended { text, ok }) => ending = Some((text, ok)),
                Ok(HandIn::Hello { .. }) => {}
                Err(error) => {
                    tracing::warn!(%error, "a watch sent a line that is not a hand-in");
                    break;
                }
            },
            Ok(None) => break,
            Err(error) => {
                tracing::warn!(%error, "a watch's hand-in failed");
                break;
            }
        }
    }
    hub.leave(membership, ending);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_hands_in_a_run_and_the_socket_is_the_users_alone() {
        // Opens descriptors: the lab's property test counts its own alone.
        crate::lab::tests::alone_on_a_runtime(async {
            let dir =
                std::env::temp_dir().join(format!("socket-lab-hub-test-{}", std::process::id()));
            let path = dir.join("hub").join("watch.sock");
            let listener = listen(&path).await.unwrap().unwrap();
            let mode = std::fs::metadata(path.parent().unwrap()).unwrap().mode();
            assert_eq!(mode & 0o777, 0o700);
            // A second server finds the first there and leaves it.
            assert!(listen(&path).await.unwrap().is_none());
            let hub = Arc::new(Hub::default());
            let (stop, shutdown) = tokio::sync::watch::channel(false);
            let server = tokio::spawn(serve(
                listener,
                path.clone(),
                Arc::clone(&hub),
                "http://127.0.0.1:1/?watch".into(),
                shutdown,
            ));
            let stream = UnixStream::connect(&path).await.unwrap();
            let (read, mut write) = stream.into_split();
            let hello = serde_json::to_string(&HandIn::Hello {
                protocol: shared::PROTOCOL_VERSION,
                command: "python3 server.py".into(),
            })
            .unwrap();
            write
                .write_all(format!("{hello}\n").as_bytes())
                .await
                .unwrap();
            let mut reader = BufReader::new(read);
            let mut line = Vec::new();
            read_line(&mut reader, &mut line).await.unwrap().unwrap();
            let welcome: Welcome = serde_json::from_slice(&line).unwrap();
            assert_eq!(welcome.page, "http://127.0.0.1:1/?watch");
            let event = Event::enter(
                "server.py[7]",
                "server.py[7].fd3",
                None,
                shared::Call::Accept,
            );
            for item in [
                HandIn::Event(event),
                HandIn::Ended {
                    text: "server.py[7] exited with status 1".into(),
                    ok: false,
                },
            ] {
                let json = serde_json::to_string(&item).unwrap();
                write
                    .write_all(format!("{json}\n").as_bytes())
                    .await
                    .unwrap();
            }
            // Not JSON: the watch's part ends there, with what it said before.
            write.write_all(b"{nonsense\n").await.unwrap();
            let mut changes = hub.changes();
            tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while hub.outcome(1).is_none() {
                    changes.changed().await.unwrap();
                }
            })
            .await
            .unwrap();
            let mut page = hub.subscribe(0).unwrap();
            assert!(matches!(
                page.items.recv().await,
                Some(crate::lab::RunItem::Event(_))
            ));
            assert_eq!(
                hub.outcome(1),
                Some(shared::RunOutcome::Cancelled {
                    reason: "server.py[7] exited with status 1".into()
                })
            );
            stop.send_replace(true);
            server.await.unwrap();
            assert!(
                !path.exists(),
                "the socket is removed when the server stops"
            );
            let _ = std::fs::remove_dir_all(&dir);
        });
    }
}
