//! Which Python call made each system call, told by the watched program itself.
//!
//! `watch` puts a folder of its own first on the program's `PYTHONPATH`, holding the
//! `sitecustomize.py` beside this file, which Python loads at start. When the program imports
//! `socket`, it wraps each method of a socket (`accept`, `sendall`, ...) and the module's
//! functions that call the kernel (`socketpair`, `gethostbyname`, ...): while one runs, a
//! buffer of the thread's own holds the file, line and name of the program's call. Each
//! thread tells the tracer once where its buffer is, by writing `A<address>` to descriptor
//! [`ANNOUNCE_FD`] (the kernel refuses the write at once, `EBADF`, but the seccomp filter
//! stops the program at every `write`); after that the tracer reads the buffer from the
//! program's memory at the stops it makes anyway, so naming the line costs no extra stop. A
//! program that is not Python, or runs with `-I`, `-E` or `-S`, has no buffer, and its calls
//! are shown without a line.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::Serialize;

/// The descriptor the announcements are written to: no descriptor can have this number, so
/// the write fails at once and nothing reads it but the tracer.
pub(crate) const ANNOUNCE_FD: i32 = -4242;

/// The most bytes of one announcement the tracer reads (a file's path, a line, a name).
pub(crate) const MAX_ANNOUNCEMENT: usize = 4096;

/// The announcer's source.
const SITECUSTOMIZE: &str = include_str!("python/sitecustomize.py");

/// The Python call a system call was made by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct PythonCall {
    /// The program's file that made it, as Python names it.
    pub(crate) file: String,
    /// Its line, from 1.
    pub(crate) line: u32,
    /// The socket method, such as `sendall`.
    pub(crate) call: String,
}

impl PythonCall {
    /// `server.py:7 sendall()`, for the terminal.
    pub(crate) fn text(&self) -> String {
        let file = self.file.rsplit('/').next().unwrap_or(&self.file);
        format!("{file}:{} {}()", self.line, self.call)
    }
}

/// The size of a thread's buffer (`_SLOT_SIZE` in `sitecustomize.py`): a little-endian `u32`
/// length, 0 while no socket method runs, then `FILE\0LINE\0METHOD`.
pub(crate) const SLOT_SIZE: usize = 1024;

/// Reads a thread's announcement of where its buffer is (`A<address>`).
pub(crate) fn parse_announcement(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes.strip_prefix(b"A")?)
        .ok()?
        .parse()
        .ok()
}

/// Reads a thread's buffer: the Python call it is in, if any.
pub(crate) fn parse_slot(bytes: &[u8]) -> Option<PythonCall> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let mut parts = bytes.get(4..4 + len)?.split(|&b| b == 0);
    let file = String::from_utf8_lossy(parts.next()?).into_owned();
    let line = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let call = String::from_utf8_lossy(parts.next()?).into_owned();
    if parts.next().is_some() || call.is_empty() {
        return None;
    }
    Some(PythonCall { file, line, call })
}

/// The announcer's folder, removed when dropped.
#[derive(Debug)]
pub(crate) struct Announcer {
    dir: PathBuf,
}

impl Announcer {
    /// Writes the announcer into a new folder of this user's own.
    pub(crate) fn new() -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("socket-lab-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        std::fs::write(dir.join("sitecustomize.py"), SITECUSTOMIZE)?;
        Ok(Announcer { dir })
    }

    /// The program's `PYTHONPATH`: the announcer's folder, then whatever it was.
    pub(crate) fn python_path(&self) -> OsString {
        let mut path = self.dir.clone().into_os_string();
        if let Some(existing) = std::env::var_os("PYTHONPATH").filter(|value| !value.is_empty()) {
            path.push(":");
            path.push(existing);
        }
        path
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threads_buffer_reads_back_and_nothing_else_does() {
        let payload = b"/home/s/server.py\x007\x00sendall";
        let mut slot = (payload.len() as u32).to_le_bytes().to_vec();
        slot.extend_from_slice(payload);
        slot.resize(SLOT_SIZE, 0);
        assert_eq!(parse_slot(&slot).unwrap().text(), "server.py:7 sendall()");
        // Between calls the length is 0: no call, whatever bytes the last one left.
        slot[..4].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse_slot(&slot), None);
        for other in [
            &b""[..],
            b"\x05\x00\x00\x00ab",
            b"\x06\x00\x00\x00a\x00x\x00b",
            b"\x03\x00\x00\x00a\x007",
        ] {
            assert_eq!(parse_slot(other), None, "{other:?}");
        }
        assert_eq!(parse_announcement(b"A140234"), Some(140_234));
        for other in [&b"A"[..], b"B12", b"A-1", b"A12x"] {
            assert_eq!(parse_announcement(other), None, "{other:?}");
        }
    }
}
