//! Turning the kernel's errors into the protocol's [`CallError`].

use std::io;

use nix::errno::Errno;
use shared::{CallError, ErrorOrigin};

use super::socket::Interrupted;

/// Describes an error the kernel returned, by its errno's name and message.
///
/// An `io::Error` without an OS code never comes from a socket call; it is still reported
/// (as `EIO`) rather than dropped, so a bug shows up as an odd event instead of a lost one.
pub(crate) fn from_io(error: &io::Error) -> CallError {
    if let Some(interrupted) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Interrupted>())
    {
        return match interrupted {
            // CPython raises `TimeoutError("timed out")` itself when a socket's timeout runs
            // out; no system call failed.
            Interrupted::TimedOut => CallError {
                errno: "ETIMEDOUT".to_owned(),
                code: Errno::ETIMEDOUT as i32,
                message: "timed out".to_owned(),
                origin: ErrorOrigin::Python,
            },
            Interrupted::Closed => refused_by_lab(Errno::EBADF, interrupted.to_string()),
        };
    }
    match error.raw_os_error() {
        Some(code) => from_code(code),
        // socket2 refuses a Unix path too long for `sockaddr_un` before any system call.
        None if error.kind() == io::ErrorKind::InvalidInput => {
            refused_by_lab(Errno::EINVAL, error.to_string())
        }
        None => CallError {
            errno: "EIO".to_owned(),
            code: Errno::EIO as i32,
            message: error.to_string(),
            origin: ErrorOrigin::Lab,
        },
    }
}

/// Describes an errno by its number.
pub(crate) fn from_code(code: i32) -> CallError {
    let errno = Errno::from_raw(code);
    CallError {
        // nix's Debug output of an Errno is its symbolic name, such as `ECONNREFUSED`.
        errno: format!("{errno:?}"),
        code,
        message: errno.desc().to_owned(),
        origin: ErrorOrigin::Kernel,
    }
}

/// An error that Socket Lab raises itself, with the errno Python would raise for it.
pub(crate) fn refused_by_lab(errno: Errno, message: impl Into<String>) -> CallError {
    CallError {
        errno: format!("{errno:?}"),
        code: errno as i32,
        message: message.into(),
        origin: ErrorOrigin::Lab,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_errors_keep_their_names_and_messages() {
        let error = from_io(&io::Error::from_raw_os_error(Errno::ECONNREFUSED as i32));
        assert_eq!(error.errno, "ECONNREFUSED");
        assert_eq!(error.code, 111);
        assert_eq!(error.message, "Connection refused");
        assert_eq!(error.origin, ErrorOrigin::Kernel);
    }
}
