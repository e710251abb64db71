//! The polling transport module handles polling, post and init requests
use std::{pin::pin, sync::Arc};

use bytes::Bytes;
use engineioxide_core::payload::{self, Payload};
use futures_util::{FutureExt as _, StreamExt, stream};
use http::{Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body::Body;
use http_body_util::Full;
use tokio_util::future::FutureExt as _;

use engineioxide_core::{Packet, ProtocolVersion, Sid, TransportType};

use crate::{
    DisconnectReason, body::ResponseBody, engine::EngineIo, errors::Error,
    handler::EngineIoHandler, socket::InternalRx, transport::make_open_packet,
};

/// Create a response for http request
fn http_response<B, D>(code: StatusCode, data: D, is_binary: bool) -> Response<ResponseBody<B>>
where
    D: Into<Bytes>,
{
    use http::header::*;
    let body: Bytes = data.into();
    let res = Response::builder()
        .status(code)
        .header(CONTENT_LENGTH, body.len());
    if is_binary {
        res.header(CONTENT_TYPE, "application/octet-stream")
    } else {
        res.header(CONTENT_TYPE, "text/plain; charset=UTF-8")
    }
    .body(ResponseBody::custom_response(Full::new(body)))
    .unwrap()
}

pub fn open_req<H, B, R>(
    engine: Arc<EngineIo<H>>,
    protocol: ProtocolVersion,
    req: Request<R>,
    supports_binary: bool,
) -> Result<Response<ResponseBody<B>>, Error>
where
    H: EngineIoHandler,
    B: Send + 'static,
{
    let socket = engine.create_session(
        protocol,
        TransportType::Polling,
        req.into_parts().0,
        supports_binary,
    );

    let packet = make_open_packet(TransportType::Polling, socket.id, &engine.config);

    engine.heartbeats.start(&socket);

    let packet: String = Packet::Open(packet).into();
    let packet = {
        #[cfg(feature = "v3")]
        {
            let mut packet = packet;
            // The V3 protocol requires the packet length to be prepended to the packet.
            // It doesn't use a packet separator like the V4 protocol (and up).
            if protocol == ProtocolVersion::V3 {
                packet = format!("{}:{}", packet.chars().count(), packet);
            }
            packet
        }
        #[cfg(not(feature = "v3"))]
        packet
    };
    Ok(http_response(StatusCode::OK, packet, false))
}

/// Handle http polling request
///
/// If there is packet in the socket buffer, it will be sent immediately
/// Otherwise it will wait for the next packet to be sent from the socket
pub async fn polling_req<B, H>(
    engine: Arc<EngineIo<H>>,
    protocol: ProtocolVersion,
    sid: Sid,
) -> Result<Response<ResponseBody<B>>, Error>
where
    B: Send + 'static,
    H: EngineIoHandler,
{
    let socket = engine.get_socket(sid).ok_or(Error::UnknownSessionID(sid))?;
    if !socket.is_http() {
        return Err(Error::TransportMismatch);
    }

    if socket.is_upgrading() {
        #[cfg(feature = "tracing")]
        tracing::debug!(?sid, "socket is upgrading, sending NOOP packet");

        let data = payload::packet_encoder(Packet::Noop, socket.protocol, socket.supports_binary);

        let is_binary = false; // The noop packet is guaranteed to be serialized as text
        return Ok(http_response(StatusCode::OK, data, is_binary));
    }

    // If the socket is already locked, it means that the socket is being used by another request
    // In case of multiple http polling, session should be closed
    let mut rx = match socket.internal_rx.try_lock() {
        Ok(s) => s,
        Err(_) => {
            socket.close(DisconnectReason::MultipleHttpPollingError);
            return Err(Error::MultipleHttpPolling);
        }
    };

    #[cfg(feature = "tracing")]
    tracing::debug!(%sid, %protocol, supports_binary = socket.supports_binary, "polling request");

    let max_payload = engine.config.max_payload;
    let payload = {
        let InternalRx {
            buffered_rx,
            peeked_packet,
        } = &mut *rx;

        // Prepend the packet peeked during the previous
        // polling request so it is encoded first, ahead of the newly received packets.
        let rx_stream =
            stream::iter(peeked_packet.take()).chain(rx_stream::ReceiverStream::new(buffered_rx));

        // Stop waiting for the next packet as soon as the session is closed. Packets buffered
        // before the close (the noop answering a close packet, a close packet) are still flushed
        // to the client: the encoder is polled once more after the cancellation is seen, as
        // `with_cancellation_token` does not poll it when the session was closed before this
        // request got here, and they may have been buffered right after its last poll.
        let mut encoder = pin!(payload::encoder(
            rx_stream,
            protocol,
            socket.supports_binary,
            max_payload
        ));
        encoder
            .as_mut()
            .with_cancellation_token(&socket.cancellation_token)
            .await
            .or_else(|| encoder.now_or_never())
    };

    let Some(Payload {
        data,
        has_binary,
        peeked,
    }) = payload
    else {
        #[cfg(feature = "tracing")]
        tracing::debug!(%sid, "session closed while polling, returning empty payload");
        return Ok(http_response(StatusCode::OK, "", false));
    };

    // set back the peeked packet so it can be read again
    // on the next polling request
    rx.peeked_packet = peeked;

    #[cfg(feature = "tracing")]
    tracing::trace!(%sid, %protocol, supports_binary = socket.supports_binary, "sending data: {:?}", data);

    Ok(http_response(StatusCode::OK, data, has_binary))
}

/// Handle http polling post request
///
/// Split the body into packets and send them to the internal socket
pub async fn post_req<R, B, H>(
    engine: Arc<EngineIo<H>>,
    protocol: ProtocolVersion,
    sid: Sid,
    req: Request<R>,
) -> Result<Response<ResponseBody<B>>, Error>
where
    H: EngineIoHandler,
    R: Body + Send + Unpin + 'static,
    <R as Body>::Error: std::fmt::Debug,
    <R as Body>::Data: Send,
    B: Send + 'static,
{
    let socket = engine.get_socket(sid).ok_or(Error::UnknownSessionID(sid))?;
    if !socket.is_http() {
        return Err(Error::TransportMismatch);
    }

    let (parts, body) = req.into_parts();
    let content_type = parts.headers.get(CONTENT_TYPE);
    let packets = payload::decoder(body, content_type, protocol, engine.config.max_payload);
    futures_util::pin_mut!(packets);

    while let Some(packet) = packets.next().await {
        match packet {
            Ok(Packet::Close) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(%sid, "received close packet, closing session");
                socket.send(Packet::Noop).ok(); // if the send fails, let's forcefully close the socket
                engine.close_session(sid, DisconnectReason::TransportClose);
                break;
            }
            Ok(Packet::Pong | Packet::Ping) => {
                socket.heartbeat_received();
                Ok(())
            }
            Ok(Packet::Message(msg)) => {
                engine.handler.on_message(msg, socket.clone());
                Ok(())
            }
            Ok(Packet::Binary(bin) | Packet::BinaryV3(bin)) => {
                engine.handler.on_binary(bin, socket.clone());
                Ok(())
            }
            Ok(p) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(%sid, "invalid packet received: {:?}", &p);
                Err(Error::BadPacket(p))
            }
            Err(e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(%sid, "could not parse packet: {e}");
                engine.close_session(sid, DisconnectReason::PacketParsingError);
                return Err(e.into());
            }
        }?;
    }
    Ok(http_response(StatusCode::OK, "ok", false))
}

mod rx_stream {
    use std::{
        pin::Pin,
        task::{Context, Poll},
    };

    use futures_core::Stream;

    /// [`ReceiverStream`] is a stream that wraps a [`queue::Receiver`](crate::queue::Receiver) by
    /// reference, allowing to use it as a stream even if it is behind a mutex. It yields the
    /// queued packets, then the volatile one (low priority, as with the ws transport).
    pub struct ReceiverStream<'a, T> {
        inner: &'a mut crate::queue::Receiver<T>,
    }

    impl<'a, T> ReceiverStream<'a, T> {
        pub fn new(inner: &'a mut crate::queue::Receiver<T>) -> Self {
            Self { inner }
        }
    }

    impl<'a, T> Stream for ReceiverStream<'a, T> {
        type Item = T;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.inner
                .poll_any(cx)
                .map(|next| next.map(crate::queue::Next::into_inner))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use engineioxide_core::{Packet, ProtocolVersion, Str, TransportType};
    use http::Request;
    use http_body_util::{BodyExt, Full};

    use super::{polling_req, post_req};
    use crate::{
        DisconnectReason, Socket, config::EngineIoConfig, engine::EngineIo, errors::Error,
        handler::EngineIoHandler,
    };

    #[derive(Debug)]
    struct Handler;
    impl EngineIoHandler for Handler {
        type Data = ();
        fn on_connect(self: std::sync::Arc<Self>, _: std::sync::Arc<Socket<()>>) {}
        fn on_disconnect(&self, _: std::sync::Arc<Socket<()>>, _: DisconnectReason) {}
        fn on_message(self: &std::sync::Arc<Self>, _: Str, _: std::sync::Arc<Socket<()>>) {}
        fn on_binary(self: &std::sync::Arc<Self>, _: Bytes, _: std::sync::Arc<Socket<()>>) {}
    }

    fn engine() -> std::sync::Arc<EngineIo<Handler>> {
        // No ping during the test: only the packets the test queues are in the buffer.
        let config = EngineIoConfig::builder()
            .ping_interval(Duration::from_secs(60))
            .build();
        std::sync::Arc::new(EngineIo::new(std::sync::Arc::new(Handler), config))
    }

    async fn body_of(res: http::Response<crate::body::ResponseBody<Full<Bytes>>>) -> (u16, Bytes) {
        let status = res.status().as_u16();
        (status, res.into_body().collect().await.unwrap().to_bytes())
    }

    /// engine.io `lib/transports/polling.ts` `onClose()`: when a close packet is posted while
    /// a GET is pending, that GET ends with a noop packet; then the session is gone.
    #[tokio::test]
    async fn close_packet_ends_pending_poll_with_noop() {
        let engine = engine();
        let req = Request::<()>::default().into_parts().0;
        let socket = engine.create_session(ProtocolVersion::V4, TransportType::Polling, req, true);
        let sid = socket.id;

        let get = tokio::spawn(polling_req::<Full<Bytes>, _>(
            engine.clone(),
            ProtocolVersion::V4,
            sid,
        ));
        // Wait until the GET holds the receiver, i.e. is pending.
        while socket.internal_rx.try_lock().is_ok() {
            tokio::task::yield_now().await;
        }

        let post = Request::post("/")
            .body(Full::new(Bytes::from_static(b"1")))
            .unwrap();
        let res = post_req::<_, Full<Bytes>, _>(engine.clone(), ProtocolVersion::V4, sid, post)
            .await
            .unwrap();
        assert_eq!(res.status(), 200);

        let (status, body) = body_of(get.await.unwrap().unwrap()).await;
        assert_eq!((status, &body[..]), (200, &b"6"[..]));

        let next = polling_req::<Full<Bytes>, _>(engine.clone(), ProtocolVersion::V4, sid).await;
        assert!(matches!(next, Err(Error::UnknownSessionID(s)) if s == sid));
    }

    /// A GET that looked its session up just before a concurrent POST of the close packet
    /// closed it (the token is already cancelled when the GET starts encoding) must still
    /// send what was buffered (the noop), not an empty body.
    #[tokio::test]
    async fn poll_racing_close_still_gets_buffered_noop() {
        let engine = engine();
        let req = Request::<()>::default().into_parts().0;
        let socket = engine.create_session(ProtocolVersion::V4, TransportType::Polling, req, true);

        // What `post_req` does on a close packet, up to the removal from the session map
        // (which the racing GET has already passed).
        socket.send(Packet::Noop).unwrap();
        socket.cancellation_token.cancel();

        let res = polling_req::<Full<Bytes>, _>(engine.clone(), ProtocolVersion::V4, socket.id)
            .await
            .unwrap();
        let (status, body) = body_of(res).await;
        assert_eq!((status, &body[..]), (200, &b"6"[..]));
    }
}
