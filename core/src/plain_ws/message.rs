//! What the host sees of plain WebSocket connections: the upgrade request and
//! the messages (the types of their events and commands).

use std::net::IpAddr;

use bytes::Bytes;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

/// What a plain WebSocket client sent with its upgrade request, in the shape of
/// Node's `IncomingMessage` as `ws` hands it to `connection` listeners.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlainHandshake {
    /// The request URL's path and query.
    pub url: String,
    /// Request headers, names in lower case; repeated headers joined with `", "`.
    pub headers: std::collections::BTreeMap<String, String>,
    /// Client IP address, when known.
    pub address: Option<IpAddr>,
    /// The subprotocol chosen (the client's first), if it asked for any.
    pub protocol: Option<String>,
}

/// A message of a plain WebSocket connection.
#[derive(Debug, Clone, PartialEq)]
pub enum PlainMessage {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Bytes),
}

impl PlainMessage {
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(bytes) => bytes.len(),
        }
    }

    pub(crate) fn to_frame(&self) -> Message {
        match self {
            Self::Text(text) => Message::text(text.as_str()),
            Self::Binary(bytes) => Message::binary(bytes.clone()),
        }
    }
}
