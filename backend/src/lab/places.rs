//! [`Places`]: where a lab's sockets may be named, and the checks on every address a program
//! gives.
//!
//! Each lab has a directory of its own for `AF_UNIX` path names, made (mode 0700) when a
//! socket is first bound in it and removed with everything in it when the lab ends, and a
//! prefix of its own in Linux's abstract namespace, which is shared by the whole machine. A
//! relative path is taken inside the directory and an abstract name gets the prefix, so that
//! the tutorial's short names work and no lab can reach another's sockets or anyone else's.
//! IP addresses are checked by the server's [`crate::policy::Policy`] before they get here.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use shared::{CallError, Family, SockAddr};

use super::{addr, errno};

/// Numbers the labs of this process, for their directory and prefix names.
static NEXT_PLACE: AtomicU64 = AtomicU64::new(1);

/// A lab's own directory and abstract-name prefix.
#[derive(Debug)]
pub(crate) struct Places {
    dir: PathBuf,
    abstract_prefix: String,
}

impl Places {
    /// New places, unique in this process and among processes (by the process id). Nothing is
    /// made on disk until a socket is bound in the directory.
    pub(crate) fn new() -> Self {
        let name = format!(
            "socket-lab-{}-{}",
            std::process::id(),
            NEXT_PLACE.fetch_add(1, Ordering::Relaxed)
        );
        Places {
            dir: std::env::temp_dir().join(&name),
            abstract_prefix: format!("{name}/"),
        }
    }

    /// The directory for path names.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The prefix every abstract name of this lab carries.
    pub(crate) fn abstract_prefix(&self) -> &str {
        &self.abstract_prefix
    }

    /// The kernel address for an address a program gave, after the lab's checks. `binding`
    /// says whether the address is about to be bound, which makes the directory exist.
    pub(crate) fn resolve(
        &self,
        address: &SockAddr,
        family: Family,
        binding: bool,
    ) -> Result<socket2::SockAddr, CallError> {
        let address_family = match address {
            SockAddr::Inet { .. } => Family::Inet,
            SockAddr::Inet6 { .. } => Family::Inet6,
            SockAddr::Unix { .. } => Family::Unix,
        };
        if address_family != family {
            // The kernel would say the same, but only after reading a sockaddr of the wrong
            // size; Python raises this before any call.
            return Err(errno::refused_by_lab(
                Errno::EAFNOSUPPORT,
                format!(
                    "a {} socket needs a {} address, not a {} one",
                    family.name(),
                    family.name(),
                    address_family.name()
                ),
            ));
        }
        let resolved = match address {
            // The lab's policy has checked IP addresses already.
            SockAddr::Inet { .. } | SockAddr::Inet6 { .. } => address.clone(),
            SockAddr::Unix {
                path,
                r#abstract: true,
            } => {
                let name = if path.starts_with(&self.abstract_prefix) {
                    path.clone()
                } else {
                    format!("{}{path}", self.abstract_prefix)
                };
                SockAddr::Unix {
                    path: name,
                    r#abstract: true,
                }
            }
            // An empty name asks the kernel to pick an abstract name (autobind).
            SockAddr::Unix { path, .. } if path.is_empty() => address.clone(),
            SockAddr::Unix { path, .. } => {
                let path = self.inside_dir(Path::new(path))?;
                if binding {
                    self.make_dir()?;
                }
                SockAddr::Unix {
                    path: path.to_string_lossy().into_owned(),
                    r#abstract: false,
                }
            }
        };
        addr::to_socket2(&resolved).map_err(|error| errno::from_io(&error))
    }

    /// The path inside the lab's directory that `path` names, refusing any other place.
    fn inside_dir(&self, path: &Path) -> Result<PathBuf, CallError> {
        let relative = if path.is_absolute() {
            path.strip_prefix(&self.dir)
                .map_err(|_| self.outside(path))?
        } else {
            path
        };
        // One plain name: the directory has no subdirectories, so nothing else could be
        // inside it, and nothing in it can be a symbolic link to elsewhere.
        let mut components = relative.components();
        if !matches!(
            (components.next(), components.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(self.outside(path));
        }
        Ok(self.dir.join(relative))
    }

    fn outside(&self, path: &Path) -> CallError {
        errno::refused_by_lab(
            Errno::EACCES,
            format!(
                "{} is outside this session's own directory; Unix socket paths must be plain \
                 names inside {} (a relative name such as 'server.sock' is taken there)",
                path.display(),
                self.dir.display()
            ),
        )
    }

    fn make_dir(&self) -> Result<(), CallError> {
        use std::os::unix::fs::DirBuilderExt;
        use std::os::unix::fs::MetadataExt;
        match std::fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                // Made by an earlier bind of this lab, or planted by someone else (another
                // user could make the name a symbolic link to their own directory): only a
                // real directory of this process's user, closed to others, is used.
                let metadata =
                    std::fs::symlink_metadata(&self.dir).map_err(|error| errno::from_io(&error))?;
                let ours = metadata.is_dir()
                    && metadata.uid() == nix::unistd::geteuid().as_raw()
                    && metadata.mode() & 0o077 == 0;
                if ours {
                    Ok(())
                } else {
                    Err(errno::refused_by_lab(
                        Errno::EACCES,
                        format!(
                            "{} exists and is not this session's own directory (a symbolic \
                             link, or open to other users); Socket Lab will not bind there",
                            self.dir.display()
                        ),
                    ))
                }
            }
            Err(error) => Err(errno::from_io(&error)),
        }
    }

    /// Removes the directory and every socket file in it.
    pub(crate) fn remove(&self) {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %error, "could not remove a lab's directory");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_paths_stay_inside_the_labs_directory() {
        // Opens descriptors: the lab's property test counts its own alone.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let places = Places::new();
        let unix = |path: &str| SockAddr::Unix {
            path: path.into(),
            r#abstract: false,
        };
        let inside = places
            .resolve(&unix("server.sock"), Family::Unix, false)
            .unwrap();
        assert_eq!(
            inside.as_pathname(),
            Some(places.dir().join("server.sock").as_path())
        );
        let absolute = places.dir().join("a.sock");
        assert!(
            places
                .resolve(&unix(&absolute.to_string_lossy()), Family::Unix, false)
                .is_ok()
        );
        for escape in [
            "../x.sock",
            "/tmp/x.sock",
            "a/../../x",
            "/",
            "sub/x.sock",
            "./x",
        ] {
            let error = places
                .resolve(&unix(escape), Family::Unix, false)
                .unwrap_err();
            assert_eq!(error.errno, "EACCES", "{escape}");
        }
    }

    #[test]
    fn abstract_names_get_the_labs_prefix_once() {
        // Opens descriptors: the lab's property test counts its own alone.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let places = Places::new();
        let name = |path: String| SockAddr::Unix {
            path,
            r#abstract: true,
        };
        let short = places
            .resolve(&name("echo".into()), Family::Unix, false)
            .unwrap();
        let full = places
            .resolve(
                &name(format!("{}echo", places.abstract_prefix())),
                Family::Unix,
                false,
            )
            .unwrap();
        assert_eq!(short, full);
        assert_eq!(
            short.as_abstract_namespace(),
            Some(format!("{}echo", places.abstract_prefix()).as_bytes())
        );
    }

    #[test]
    fn an_address_of_another_family_is_refused_before_any_call() {
        // Opens descriptors: the lab's property test counts its own alone.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let places = Places::new();
        let v4 = SockAddr::Inet {
            host: std::net::Ipv4Addr::LOCALHOST,
            port: 1,
        };
        let error = places.resolve(&v4, Family::Inet6, false).unwrap_err();
        assert_eq!(error.errno, "EAFNOSUPPORT");
    }

    #[test]
    fn a_directory_planted_as_a_symlink_is_not_used() {
        // Opens descriptors: the lab's property test counts its own alone.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        let places = Places::new();
        let elsewhere =
            std::env::temp_dir().join(format!("socket-lab-test-elsewhere-{}", std::process::id()));
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, places.dir()).unwrap();
        let unix = SockAddr::Unix {
            path: "server.sock".into(),
            r#abstract: false,
        };
        let error = places.resolve(&unix, Family::Unix, true).unwrap_err();
        std::fs::remove_file(places.dir()).unwrap();
        std::fs::remove_dir_all(&elsewhere).unwrap();
        assert_eq!(error.errno, "EACCES");
        assert!(error.message.contains("symbolic"), "{}", error.message);
    }
}
