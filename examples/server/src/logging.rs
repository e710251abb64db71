//! The server's log: `RUST_LOG` as the operator sets it, except that the
//! transport crates (Engine.IO, Socket.IO, WebSocket) stay at `info`. At `debug` and `trace` they write raw
//! Engine.IO and Socket.IO packets, and with them handshake tokens and message
//! texts. An operator who names one of them in `RUST_LOG` gets what they ask for
//! (packet logs for debugging a client, on a server without real users).

use tracing_subscriber::EnvFilter;

/// The crates that log packets as they are.
const PACKET_LOGGERS: [&str; 6] = [
    "engineioxide",
    "socketioxide",
    "socketioxide_core",
    "socketioxide_parser_common",
    "tungstenite",
    "tokio_tungstenite",
];

/// What is logged when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str = "info";

/// The filter for `rust_log` (the value of `RUST_LOG`, if set).
pub(crate) fn filter(rust_log: Option<&str>) -> EnvFilter {
    let mut directives = rust_log.unwrap_or(DEFAULT_FILTER).to_string();
    for target in PACKET_LOGGERS {
        if !names_target(&directives, target) {
            directives.push_str(&format!(",{target}=info"));
        }
    }
    EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!(
            "palaver-server: RUST_LOG {directives:?} is not a valid filter ({e}); logging at info"
        );
        EnvFilter::new(DEFAULT_FILTER)
    })
}

/// Whether one of the comma-separated directives is about `target` itself (not a
/// crate whose name merely starts the same).
fn names_target(directives: &str, target: &str) -> bool {
    directives.split(',').any(|directive| {
        let name = directive.trim().split(['=', '[']).next().unwrap_or("");
        name == target || name.starts_with(&format!("{target}::"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_loggers_stay_at_info_unless_named() {
        assert!(!names_target("debug", "socketioxide"));
        assert!(!names_target("socketioxide_core=trace", "socketioxide"));
        assert!(names_target("info,socketioxide=trace", "socketioxide"));
        assert!(names_target(
            "engineioxide::transport=debug",
            "engineioxide"
        ));
        let shown = filter(Some("trace")).to_string();
        for target in PACKET_LOGGERS {
            assert!(shown.contains(&format!("{target}=info")), "{shown}");
        }
        assert!(filter(Some("socketioxide=trace"))
            .to_string()
            .contains("socketioxide=trace"));
    }
}
