//! Which `Host` names the chat answers to, against DNS rebinding: a web page at
//! `attacker.example` whose name is pointed at this server afterwards talks to
//! the chat as its own origin. Its requests still name `attacker.example` in
//! `Host`, which is how they are told apart.

use axum::body::Body;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};

use crate::refusal::json_refusal;

/// The host names allowed besides the ones always allowed.
pub(crate) struct HostPolicy {
    any: bool,
    /// Lowercased names, exact.
    names: Vec<String>,
    /// Lowercased suffixes (`.corp.example` for `*.corp.example`).
    suffixes: Vec<String>,
}

impl HostPolicy {
    pub(crate) fn new(allowed_hosts: &[String]) -> Self {
        let any = allowed_hosts.iter().any(|h| h == "*");
        if any {
            tracing::warn!(
                "allowed_hosts contains \"*\": pages on any host name may reach this chat \
                 (DNS rebinding is not stopped)"
            );
        }
        let entries = allowed_hosts
            .iter()
            .filter(|h| *h != "*")
            .map(|h| h.to_ascii_lowercase());
        let (suffixes, names): (Vec<_>, Vec<_>) = entries.partition(|h| h.starts_with("*."));
        Self {
            any,
            names,
            suffixes: suffixes.into_iter().map(|s| s[1..].to_string()).collect(),
        }
    }

    /// A 403 for a request sent to a host name that is not allowed. A request
    /// without a `Host` (HTTP/1.0) is not from a browser and passes.
    pub(crate) fn refuse(&self, request: &Request<Body>) -> Option<Response<Body>> {
        if self.any {
            return None;
        }
        let host = request
            .headers()
            .get(header::HOST)
            .map(HeaderValue::to_str)
            .or_else(|| request.uri().host().map(Ok))?;
        if host.is_ok_and(|host| self.allows(host)) {
            return None;
        }
        Some(json_refusal(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            "this host name may not use the chat; add it to allowed_hosts",
        ))
    }

    fn allows(&self, host_and_port: &str) -> bool {
        let host = strip_port(host_and_port).to_ascii_lowercase();
        always_allowed(&host)
            || self.names.contains(&host)
            || self
                .suffixes
                .iter()
                .any(|suffix| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
    }
}

/// IP addresses (a rebinding attack needs a name of its own), `localhost` and
/// names under `.localhost` (which resolve to this machine only).
fn always_allowed(host: &str) -> bool {
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    unbracketed.parse::<std::net::IpAddr>().is_ok()
        || host == "localhost"
        || host.ends_with(".localhost")
}

/// `name:port` → `name`; `[v6]:port` → `[v6]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// Whether `entry` can be in `allowed_hosts`: `"*"`, a host name, or `"*."`
/// followed by a host name.
pub(crate) fn is_allowed_host_entry(entry: &str) -> bool {
    let name = entry.strip_prefix("*.").unwrap_or(entry);
    entry == "*"
        || (!name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent_to(host: &str) -> Request<Body> {
        Request::get("/socket.io/")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap()
    }

    #[test]
    fn hosts() {
        let policy = HostPolicy::new(&["chat.example".into(), "*.corp.example".into()]);
        for allowed in [
            "127.0.0.1:3000",
            "[::1]:3000",
            "localhost:3000",
            "LOCALHOST",
            "app.localhost:3000",
            "chat.example",
            "Chat.Example:443",
            "a.corp.example",
        ] {
            assert!(policy.refuse(&sent_to(allowed)).is_none(), "{allowed}");
        }
        for refused in [
            "attacker.example:3000",
            "corp.example",
            "chat.example.evil",
            "localhost.evil",
        ] {
            assert!(policy.refuse(&sent_to(refused)).is_some(), "{refused}");
        }
        let any = HostPolicy::new(&["*".into()]);
        assert!(any.refuse(&sent_to("attacker.example")).is_none());
    }

    #[test]
    fn entries() {
        for good in ["*", "chat.example", "*.corp.example", "localhost"] {
            assert!(is_allowed_host_entry(good), "{good}");
        }
        for bad in [
            "",
            "*.",
            "http://chat.example",
            "chat.example:3000",
            "a/b",
            "a..b",
        ] {
            assert!(!is_allowed_host_entry(bad), "{bad}");
        }
    }
}
