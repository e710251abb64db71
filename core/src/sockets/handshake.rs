//! What a client sent with its connection, in the shape of socket.io's
//! `socket.handshake`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Socket;
use socketioxide::TransportType;

use crate::headers::header_map;
use crate::peer::peer_ip;

/// A connection's handshake: headers, query, `auth`, address, transport, time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Handshake {
    /// Request headers, names in lower case; repeated headers joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// Query parameters of the connection URL (the first value of a repeated one).
    pub query: BTreeMap<String, String>,
    /// The client's `auth` object (`{}` when it sent none).
    pub auth: Value,
    /// Client IP address, when known.
    pub address: Option<IpAddr>,
    /// `"websocket"` or `"polling"`, as connected.
    pub transport: &'static str,
    /// When the connection arrived, in milliseconds since the Unix epoch.
    pub issued: u64,
    /// The connection URL's path and query.
    pub url: String,
}

impl Handshake {
    /// About how many bytes it takes.
    pub(crate) fn weight(&self) -> usize {
        let pairs = |map: &BTreeMap<String, String>| -> usize {
            map.iter().map(|(k, v)| k.len() + v.len() + 16).sum()
        };
        pairs(&self.headers) + pairs(&self.query) + self.url.len() + 64
    }

    pub(crate) fn of<A: Adapter>(socket: &Socket<A>, auth: Option<Value>) -> Self {
        let parts = socket.req_parts();
        let headers = header_map(&parts.headers);
        let mut query = BTreeMap::new();
        if let Some(raw) = parts.uri.query() {
            for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
                query
                    .entry(key.into_owned())
                    .or_insert_with(|| value.into_owned());
            }
        }
        let issued = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            headers,
            query,
            auth: match auth {
                Some(auth @ Value::Object(_)) => auth,
                _ => Value::Object(Default::default()),
            },
            address: peer_ip(socket),
            transport: match socket.transport_type() {
                TransportType::Websocket => "websocket",
                TransportType::Polling => "polling",
            },
            issued,
            url: parts
                .uri
                .path_and_query()
                .map(|pq| pq.as_str().to_owned())
                .unwrap_or_default(),
        }
    }
}
