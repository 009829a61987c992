//! Who may open a session: the origin check and the access token of `/ws`.
//!
//! A server that opens sockets at a browser's command must not take commands from any page a
//! student happens to visit (cross-site WebSocket hijacking). Browsers send an `Origin` header
//! with every WebSocket handshake, which a page cannot forge: `/ws` accepts only the app's own
//! origin and those given with `--allow-origin`. On loopback, the `Host` must be a loopback
//! name too, so that a site whose name resolves to 127.0.0.1 (DNS rebinding) is not "the app's
//! own origin". Served beyond loopback, `/ws` also requires an access token, as Jupyter does.

use std::net::SocketAddr;

use axum::http::{HeaderMap, StatusCode, header};

use crate::server::Config;

/// The trunk development server's origins, allowed by development builds of the backend
/// (`cargo run -p backend` with `trunk serve`).
const TRUNK_ORIGINS: [&str; 2] = ["http://127.0.0.1:8080", "http://localhost:8080"];

/// The access rules of one server.
#[derive(Debug)]
pub(crate) struct Access {
    /// Origins that may open a session, exactly (scheme, host, port).
    origins: Vec<String>,
    /// Whether the server listens on loopback only.
    loopback: bool,
    /// The token a session must give, if any.
    token: Option<String>,
}

/// Why a handshake was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) status: StatusCode,
    pub(crate) reason: &'static str,
}

impl Access {
    pub(crate) fn new(config: &Config, local: SocketAddr) -> Self {
        let port = local.port();
        let loopback = local.ip().is_loopback();
        let mut origins = vec![format!("http://{local}")];
        if loopback {
            origins.push(format!("http://localhost:{port}"));
        }
        if cfg!(debug_assertions) {
            origins.extend(TRUNK_ORIGINS.iter().map(|origin| (*origin).to_owned()));
        }
        origins.extend(
            config
                .allow_origins
                .iter()
                .map(|origin| origin.trim_end_matches('/').to_ascii_lowercase()),
        );
        Access {
            origins,
            loopback,
            token: config.token.clone(),
        }
    }

    /// Checks a handshake's headers and its `token` query parameter.
    pub(crate) fn check(&self, headers: &HeaderMap, token: Option<&str>) -> Result<(), Refused> {
        let header = |name| headers.get(name).and_then(|value| value.to_str().ok());
        let host = header(header::HOST)
            .unwrap_or_default()
            .to_ascii_lowercase();
        if self.loopback && !is_loopback_host(&host) {
            return Err(Refused {
                status: StatusCode::FORBIDDEN,
                reason: "this server answers only to its loopback names (127.0.0.1, localhost)",
            });
        }
        // A browser always sends Origin; a client without one is not a web page, and no page
        // can make a browser leave it out.
        if let Some(origin) = header(header::ORIGIN) {
            let origin = origin.to_ascii_lowercase();
            let same_host = !self.loopback && origin == format!("http://{host}");
            if !(same_host || self.origins.contains(&origin)) {
                return Err(Refused {
                    status: StatusCode::FORBIDDEN,
                    reason: "this origin may not open a session (see --allow-origin)",
                });
            }
        }
        if let Some(expected) = &self.token
            && !token.is_some_and(|given| same_secret(given.as_bytes(), expected.as_bytes()))
        {
            return Err(Refused {
                status: StatusCode::UNAUTHORIZED,
                reason: "a missing or wrong access token (open the URL the server printed)",
            });
        }
        Ok(())
    }
}

/// Whether a `Host` header names this machine's loopback: `localhost`, an IPv4 address in
/// 127.0.0.0/8 or `[::1]`, with any port or none.
///
/// The port does not matter to the DNS-rebinding defence: a rebound site sends its own name,
/// whatever its port, and a loopback name with another port is a page on this machine, such
/// as the trunk development server on :8080, whose proxy sends `Host: 127.0.0.1` without one.
/// The `Origin` check decides which of those pages may open a session.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:3000`.
        Some(rest) => match rest.split_once(']') {
            Some((address, "")) => address,
            Some((address, port)) if is_port(port.strip_prefix(':').unwrap_or("-")) => address,
            _ => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        },
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `text` is a port number as a `Host` header writes one.
fn is_port(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && text.parse::<u16>().is_ok()
}

/// Compares two secrets in time that depends only on their lengths, so that how long a wrong
/// guess takes says nothing about how much of it was right.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

/// A new access token: 128 bits from the kernel's random source, in hex.
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        headers
    }

    #[test]
    fn only_the_apps_own_origin_opens_a_session_on_loopback() {
        let mut config = Config::new("dist");
        config.allow_origins = vec!["http://127.0.0.1:9000/".into()];
        let access = Access::new(&config, "127.0.0.1:3000".parse().unwrap());
        let host = "127.0.0.1:3000";
        for allowed in [
            None,
            Some("http://127.0.0.1:3000"),
            Some("http://localhost:3000"),
            Some("http://127.0.0.1:9000"),
        ] {
            assert_eq!(
                access.check(&headers(host, allowed), None),
                Ok(()),
                "{allowed:?}"
            );
        }
        for refused in [
            "null",
            "http://localhost:3000.evil.example",
            "http://127.0.0.1:3001",
            "https://127.0.0.1:3000",
            "http://evil.example",
        ] {
            let result = access.check(&headers(host, Some(refused)), None);
            assert_eq!(
                result.unwrap_err().status,
                StatusCode::FORBIDDEN,
                "{refused}"
            );
        }
        // DNS rebinding: a site's name resolved to 127.0.0.1, with its own name as Host.
        let rebound = headers("evil.example:3000", Some("http://evil.example:3000"));
        assert_eq!(
            access.check(&rebound, None).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn a_loopback_name_passes_with_any_port_or_none() {
        for loopback in [
            "127.0.0.1",
            "127.0.0.1:3000",
            "127.0.0.1:8080",
            "127.64.0.9:12345",
            "localhost",
            "localhost:3000",
            "localhost:8080",
            "[::1]",
            "[::1]:3000",
            "[0:0:0:0:0:0:0:1]:80",
        ] {
            assert!(is_loopback_host(loopback), "{loopback}");
        }
        for other in [
            "",
            "evil.example",
            "evil.example:3000",
            "localhost.evil.example",
            "localhost.evil.example:3000",
            "127.0.0.1.evil.example",
            "localhost:3000.evil.example",
            "127.0.0.1:",
            "127.0.0.1:+80",
            "127.0.0.1:65536",
            "127.0.0.1:3000:3000",
            "10.0.0.5:3000",
            "0.0.0.0:3000",
            "[::1",
            "[::1]3000",
            "[::1]:",
            "[::2]:3000",
            "[fe80::1]",
            "::1",
        ] {
            assert!(!is_loopback_host(other), "{other:?}");
        }
    }

    #[test]
    fn the_trunk_dev_servers_proxy_opens_a_session_on_a_development_build() {
        // trunk 0.21's WebSocket proxy sends Host without a port and the page's own origin.
        let access = Access::new(&Config::new("dist"), "127.0.0.1:3000".parse().unwrap());
        for origin in ["http://127.0.0.1:8080", "http://localhost:8080"] {
            let proxied = headers("127.0.0.1", Some(origin));
            assert_eq!(
                access.check(&proxied, None).is_ok(),
                cfg!(debug_assertions),
                "{origin}"
            );
        }
        // A rebound name is still refused, whatever its port or none.
        for rebound in ["evil.example", "evil.example:8080"] {
            let headers = headers(rebound, Some("http://127.0.0.1:8080"));
            assert_eq!(
                access.check(&headers, None).unwrap_err().status,
                StatusCode::FORBIDDEN
            );
        }
    }

    #[test]
    fn beyond_loopback_a_token_is_required_and_compared_whole() {
        let mut config = Config::new("dist");
        config.token = Some("0123456789abcdef".into());
        let access = Access::new(&config, "0.0.0.0:3000".parse().unwrap());
        let lab = headers("10.0.0.5:3000", Some("http://10.0.0.5:3000"));
        assert_eq!(access.check(&lab, Some("0123456789abcdef")), Ok(()));
        for wrong in [
            None,
            Some(""),
            Some("0123456789abcde"),
            Some("0123456789abcdeF"),
        ] {
            assert_eq!(
                access.check(&lab, wrong).unwrap_err().status,
                StatusCode::UNAUTHORIZED,
                "{wrong:?}"
            );
        }
        // Another site still may not drive a student's browser into the lab's server.
        let other = headers("10.0.0.5:3000", Some("http://evil.example"));
        assert_eq!(
            access
                .check(&other, Some("0123456789abcdef"))
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
        // The lab's property test counts this process's descriptors; /dev/urandom is one.
        let _descriptors = crate::lab::tests::descriptors_to_myself();
        assert_eq!(new_token().unwrap().len(), 32);
    }
}
