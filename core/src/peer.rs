//! The client's address: put into every request's extensions by the server that
//! accepted the connection, read back by whoever needs it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Socket;

/// The client's address, put into every request's extensions by the server that
/// accepted the connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub SocketAddr);

/// The client's IP address: from the server that accepted the connection, or
/// axum's connect info when the chat is a layer in the host's router.
pub(crate) fn peer_ip<A: Adapter>(socket: &Socket<A>) -> Option<IpAddr> {
    request_ip(&socket.req_parts().extensions)
}

/// The client's IP address from a request's extensions.
pub(crate) fn request_ip(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<PeerAddr>()
        .map(|peer| peer.0.ip())
        .or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip())
        })
}
