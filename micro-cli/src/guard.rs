//! What the gateway, the sidecar and the dashboard refuse (403) to protect the services
//! behind them from web pages elsewhere, which a browser on this machine would otherwise let
//! call them:
//!
//! - a `Host` that is not an IP address, `localhost`, or a host `--allowed_hosts` names: a
//!   DNS name an attacker rebound to this machine (DNS rebinding);
//! - a request the browser marks cross-site (`Sec-Fetch-Site` other than `same-origin` or
//!   `none`), or whose `Origin` is neither the server's own nor one `--cors` allows;
//! - a POST (PUT, DELETE, PATCH) with a body a page can send cross-site without asking
//!   first (form fields, `text/plain`), unless the browser says it is same-origin: tools
//!   send JSON (`Content-Type: application/json`), which a browser sends cross-site only
//!   after a preflight that CORS decides.

use axum::http::{HeaderMap, Method, header};

/// Who may call.
#[derive(Clone, Debug, Default)]
pub(crate) struct Guard {
    /// Host names (no port) allowed besides addresses and `localhost`; `*` for any.
    allowed_hosts: Vec<String>,
    /// Origins browsers may call from (`--cors`; `*` for any).
    cors: Vec<String>,
}

impl Guard {
    /// A guard for `allowed_hosts` and `cors` (comma-separated lists, as the flags take
    /// them).
    pub(crate) fn new(allowed_hosts: &str, cors: &str) -> Guard {
        let list = |text: &str| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Guard {
            allowed_hosts: list(allowed_hosts)
                .into_iter()
                .map(|h| host_name(&h).to_ascii_lowercase())
                .collect(),
            cors: list(cors),
        }
    }

    /// Whether `--cors` lets `origin` call.
    pub(crate) fn cors_allows(&self, origin: &[u8]) -> bool {
        self.cors
            .iter()
            .any(|allowed| allowed == "*" || allowed.as_bytes() == origin)
    }

    /// `Err(why)` for a request to refuse (see the module's docs).
    pub(crate) fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), String> {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let host = text(header::HOST);
        if let Some(host) = host
            && !self.host_allowed(host)
        {
            return Err(format!(
                "host {host:?} is not this server's (an address, localhost, or one --allowed_hosts names)"
            ));
        }
        let origin = headers.get(header::ORIGIN);
        let same_origin = match (origin, host) {
            (Some(origin), Some(host)) => origin_authority(origin.as_bytes())
                .is_some_and(|authority| authority.eq_ignore_ascii_case(host)),
            _ => false,
        };
        let cors_allowed = origin.is_some_and(|o| self.cors_allows(o.as_bytes()));
        if let Some(origin) = origin
            && !same_origin
            && !cors_allowed
        {
            return Err(format!(
                "a request from origin {:?} (not this server's, nor one --cors allows)",
                String::from_utf8_lossy(origin.as_bytes())
            ));
        }
        let fetched = text(header::HeaderName::from_static("sec-fetch-site"));
        match fetched {
            None | Some("none" | "same-origin") => {}
            Some(_) if cors_allowed => {}
            Some(site) => return Err(format!("a {site} request from a web page")),
        }
        let unsafe_method = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let said_same_origin = same_origin || fetched == Some("same-origin");
        if unsafe_method && !said_same_origin && !cors_allowed {
            let content_type = text(header::CONTENT_TYPE).unwrap_or("");
            let media = content_type
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if matches!(
                media.as_str(),
                "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
            ) {
                return Err(format!(
                    "a {method} of {media} with no origin: send JSON (Content-Type: application/json), which web pages elsewhere can't"
                ));
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        name.eq_ignore_ascii_case("localhost")
            || name.parse::<std::net::IpAddr>().is_ok()
            || self
                .allowed_hosts
                .iter()
                .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(name))
    }
}

/// `example.com:8080` -> `example.com`, `[::1]:8080` -> `[::1]`.
fn host_name(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!name.contains(':') || name.ends_with(']')) =>
        {
            name
        }
        _ => host,
    }
}

/// `http://127.0.0.1:8080` -> `127.0.0.1:8080`.
fn origin_authority(origin: &[u8]) -> Option<&str> {
    let origin = std::str::from_utf8(origin).ok()?;
    let (_, rest) = origin.split_once("://")?;
    Some(rest.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn rebound_hosts_are_refused_unless_allowed() {
        let guard = Guard::new("api.example.com", "");
        for ok in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "localhost",
            "LOCALHOST:1",
            "api.example.com:8080",
        ] {
            assert!(
                guard.check(&Method::GET, &headers(&[("host", ok)])).is_ok(),
                "{ok}"
            );
        }
        let err = guard
            .check(&Method::GET, &headers(&[("host", "evil.com")]))
            .unwrap_err();
        assert!(err.contains("\"evil.com\""), "{err}");
        assert!(
            Guard::new("*", "")
                .check(&Method::GET, &headers(&[("host", "any.where")]))
                .is_ok()
        );
        let local = Guard::new("", "");
        for bad in [
            "evil.example:8082",
            "127.0.0.1.nip.io",
            "localhost.evil",
            "",
        ] {
            assert!(
                local
                    .check(&Method::GET, &headers(&[("host", bad)]))
                    .is_err(),
                "{bad:?}"
            );
        }
        assert!(
            local
                .check(&Method::GET, &headers(&[("host", "10.0.0.1")]))
                .is_ok()
        );
    }

    #[test]
    fn cross_site_requests_are_refused_unless_cors_allows_them() {
        let guard = Guard::new("", "https://app.example.com");
        let host = ("host", "127.0.0.1:8080");
        let refuse = |pairs: &[(&str, &str)], method: Method| {
            assert!(guard.check(&method, &headers(pairs)).is_err(), "{pairs:?}");
        };
        let allow = |pairs: &[(&str, &str)], method: Method| {
            assert_eq!(guard.check(&method, &headers(pairs)), Ok(()), "{pairs:?}");
        };
        // A form of another site, an image tag, a fetch: refused.
        refuse(
            &[
                host,
                ("origin", "https://evil.com"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Method::POST,
        );
        refuse(&[host, ("sec-fetch-site", "cross-site")], Method::GET);
        refuse(&[host, ("origin", "null")], Method::POST);
        // Its own pages, and the origin --cors allows.
        allow(
            &[
                host,
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "same-origin"),
            ],
            Method::POST,
        );
        allow(
            &[
                host,
                ("origin", "https://app.example.com"),
                ("sec-fetch-site", "cross-site"),
            ],
            Method::POST,
        );
        // Tools: JSON, or GET; a form or text/plain with no origin at all is refused.
        allow(&[host, ("content-type", "application/json")], Method::POST);
        allow(&[host], Method::GET);
        refuse(
            &[host, ("content-type", "text/plain;charset=UTF-8")],
            Method::POST,
        );
        refuse(
            &[host, ("content-type", "multipart/form-data; boundary=x")],
            Method::PUT,
        );
        allow(
            &[
                host,
                ("content-type", "application/x-www-form-urlencoded"),
                ("sec-fetch-site", "same-origin"),
            ],
            Method::POST,
        );
    }
}
