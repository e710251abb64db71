//! A minimal WebSocket client (RFC 6455), just what the load generator needs: the
//! upgrade request, masked text frames out, text/ping/close frames in.
//!
//! Written by hand rather than with tungstenite so that an idle connection costs a
//! socket and a small buffer, which lets one process hold tens of thousands.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Bytes read at a time.
const READ_CHUNK: usize = 4096;
/// A buffer larger than this is dropped once empty (after a big frame).
const KEEP_CAPACITY: usize = 16 * 1024;
/// Largest upgrade response accepted.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Largest frame accepted (Palaver's room lists are well below).
const MAX_FRAME: u64 = 16 << 20;

/// One frame (or reassembled message) from the server.
pub enum Frame {
    Text(Bytes),
    Ping(Bytes),
    Close,
    Other,
}

pub struct WsConn {
    stream: TcpStream,
    buf: BytesMut,
    /// A fragmented message being reassembled.
    fragments: Option<BytesMut>,
    mask: u32,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl WsConn {
    /// Connects from `source` (a loopback address, port chosen by the kernel) to
    /// `server` and upgrades `path` to WebSocket.
    pub async fn connect(server: SocketAddr, source: Ipv4Addr, path: &str) -> io::Result<Self> {
        if !server.ip().is_loopback() || !source.is_loopback() {
            // The harness loads servers on this machine only.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("refusing to send load to {server} (not a loopback address)"),
            ));
        }
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))?;
        let mut stream = socket.connect(server).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let head_len = loop {
            if let Some(at) = find(&buf, b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > MAX_RESPONSE_HEAD {
                return Err(invalid("upgrade response head too long"));
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during the upgrade",
                ));
            }
        };
        let status = buf[..head_len].split(|&b| b == b'\r').next().unwrap_or(&[]);
        if !status.starts_with(b"HTTP/1.1 101") {
            return Err(invalid(format!(
                "upgrade refused: {}",
                String::from_utf8_lossy(status)
            )));
        }
        buf.advance(head_len);
        let seed = u32::from(source) ^ (u32::from(stream.local_addr()?.port()) << 16) | 1;
        Ok(Self {
            stream,
            buf,
            fragments: None,
            mask: seed,
        })
    }

    /// Reads more bytes from the socket. Cancel-safe (usable in `select!`).
    pub async fn fill(&mut self) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            self.buf.reserve(READ_CHUNK);
        }
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed by the server",
            ));
        }
        Ok(())
    }

    /// The next complete frame already read, if any.
    pub fn parse(&mut self) -> io::Result<Option<Frame>> {
        loop {
            let buf = &self.buf[..];
            if buf.len() < 2 {
                return Ok(None);
            }
            let fin = buf[0] & 0x80 != 0;
            let opcode = buf[0] & 0x0f;
            let masked = buf[1] & 0x80 != 0;
            let (len, mut head) = match buf[1] & 0x7f {
                126 if buf.len() < 4 => return Ok(None),
                126 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
                127 if buf.len() < 10 => return Ok(None),
                127 => (
                    u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes")),
                    10,
                ),
                n => (u64::from(n), 2),
            };
            if len > MAX_FRAME {
                return Err(invalid(format!("frame of {len} bytes")));
            }
            let key_at = head;
            if masked {
                head += 4;
            }
            let total = head + len as usize;
            if self.buf.len() < total {
                self.buf.reserve(total - self.buf.len());
                return Ok(None);
            }
            let mut frame = self.buf.split_to(total);
            if masked {
                let key: [u8; 4] = frame[key_at..key_at + 4].try_into().expect("4 bytes");
                for (i, b) in frame[head..].iter_mut().enumerate() {
                    *b ^= key[i % 4];
                }
            }
            frame.advance(head);
            match opcode {
                0x0 => {
                    let Some(mut message) = self.fragments.take() else {
                        return Err(invalid("continuation without a first fragment"));
                    };
                    message.extend_from_slice(&frame);
                    if fin {
                        return Ok(Some(Frame::Text(message.freeze())));
                    }
                    self.fragments = Some(message);
                }
                0x1 | 0x2 if fin => return Ok(Some(Frame::Text(frame.freeze()))),
                0x1 | 0x2 => self.fragments = Some(frame),
                0x8 => return Ok(Some(Frame::Close)),
                0x9 => return Ok(Some(Frame::Ping(frame.freeze()))),
                _ => return Ok(Some(Frame::Other)),
            }
        }
    }

    /// The next frame, reading as needed.
    pub async fn next(&mut self) -> io::Result<Frame> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(frame);
            }
            self.fill().await?;
        }
    }

    /// Gives a large, now empty read buffer back (idle connections stay small).
    pub fn compact(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
            self.buf = BytesMut::new();
        }
    }

    fn next_mask(&mut self) -> [u8; 4] {
        // xorshift32: masks need not be secret here, only present.
        let mut x = self.mask;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask = x;
        x.to_ne_bytes()
    }

    /// Sends one frame (masked, as a client must).
    async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let key = self.next_mask();
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        self.stream.write_all(&frame).await
    }

    pub async fn send_text(&mut self, payload: &[u8]) -> io::Result<()> {
        self.send(0x1, payload).await
    }

    pub async fn send_pong(&mut self, payload: &[u8]) -> io::Result<()> {
        self.send(0xA, payload).await
    }
}

/// First position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let last_start = haystack.len() - needle.len();
    let mut at = 0;
    while at <= last_start {
        match haystack[at..=last_start].iter().position(|&b| b == first) {
            None => return None,
            Some(offset) => {
                let start = at + offset;
                if &haystack[start..start + needle.len()] == needle {
                    return Some(start);
                }
                at = start + 1;
            }
        }
    }
    None
}
