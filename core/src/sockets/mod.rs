//! The Socket.IO engine face: namespaces whose connections the host handles
//! with socket.io's primitives (events with all their arguments and acks,
//! emits to connections, rooms and everyone with exceptions, rooms, disconnects,
//! a connect gate), while transport, encoding and fan-out stay here.
//!
//! Events go to the host through the event queue (`events.rs`); the host's
//! commands come back through one ordered queue (`executor.rs`).

mod args;
mod commands;
mod executor;
mod handshake;
mod host_socket;
mod namespace;
mod recovery;

pub use args::{ArgsError, JsonArgs, OutArgs};
pub use commands::{
    AckReply, CommandError, QueryAnswer, SocketCommand, SocketInfo, SocketQuery, Target,
};
pub use handshake::Handshake;

pub(crate) use args::RawEvent;
pub(crate) use commands::check_event;
pub(crate) use executor::{start, CommandQueue};
