//! The stable code of every error a host can get from the engine's API, which
//! the bindings turn into their own (a C `palaver_result`, a Node
//! `ERR_PALAVER_...` code) from one table each.

use crate::acks::AckError;
use crate::assemble::BuildError;
use crate::config::ConfigError;
use crate::engine::{AdoptError, StartError};
use crate::handle::{DisconnectError, EmitError};
use crate::protocol::{ChatError, ErrorCode};
use crate::shutdown::StopError;
use crate::sockets::CommandError;

/// What kind of failure an API error is; see each error enum's `code()`.
///
/// Deliberately not `#[non_exhaustive]`: each binding maps every code, so a new
/// one is a compile error there until it has its C result and its Node code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostErrorCode {
    /// An argument is out of range or malformed (event name, room name, JSON).
    InvalidArgument,
    /// The configuration cannot work.
    InvalidConfig,
    /// The configured address could not be bound.
    BindFailed,
    /// Starting failed for another reason (history file, runtime, threads, Redis).
    StartFailed,
    /// The engine is not running (not started, stopping or stopped).
    NotRunning,
    /// The user has no connection.
    UserOffline,
    /// No custom event waits for an answer with this id.
    UnknownAck,
    /// Not allowed from inside the event callback (it would wait for itself).
    InsideCallback,
    /// A socket could not be used.
    Io,
    /// The cluster backend failed to carry a command.
    DeliveryFailed,
    /// A queue is at its bound: the host gives work faster than it is done.
    Busy,
    /// An unexpected fault inside the engine.
    Internal,
}

impl HostErrorCode {
    /// The code as a stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::InvalidConfig => "invalid_config",
            Self::BindFailed => "bind_failed",
            Self::StartFailed => "start_failed",
            Self::NotRunning => "not_running",
            Self::UserOffline => "user_offline",
            Self::UnknownAck => "unknown_ack",
            Self::InsideCallback => "inside_callback",
            Self::Io => "io",
            Self::DeliveryFailed => "delivery_failed",
            Self::Busy => "busy",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for HostErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BuildError {
    /// This error's stable code.
    pub fn code(&self) -> HostErrorCode {
        match self {
            Self::Config(_) => HostErrorCode::InvalidConfig,
            _ => HostErrorCode::StartFailed,
        }
    }
}

impl ConfigError {
    /// This error's stable code.
    pub fn code(&self) -> HostErrorCode {
        HostErrorCode::InvalidConfig
    }
}

impl StartError {
    /// This error's stable code.
    pub fn code(&self) -> HostErrorCode {
        match self {
            Self::Build(e) => e.code(),
            Self::Bind { .. } => HostErrorCode::BindFailed,
            Self::Runtime(_) => HostErrorCode::StartFailed,
        }
    }
}

impl StopError {
    /// This error's stable code.
    pub fn code(&self) -> HostErrorCode {
        match self {
            Self::AlreadyStopped => HostErrorCode::NotRunning,
            Self::InsideEventCallback => HostErrorCode::InsideCallback,
        }
    }
}

impl AdoptError {
    /// This error's stable code.
    pub fn code(&self) -> HostErrorCode {
        match self {
            Self::NotRunning => HostErrorCode::NotRunning,
            Self::Socket(_) => HostErrorCode::Io,
        }
    }
}

impl EmitError {
    /// This error's stable code.
    pub fn code(&self) -> HostErrorCode {
        match self {
            Self::InvalidEvent(_) | Self::InvalidRoom(_) => HostErrorCode::InvalidArgument,
            Self::UserOffline(_) => HostErrorCode::UserOffline,
            Self::NotRunning => HostErrorCode::NotRunning,
            Self::Delivery(_) => HostErrorCode::DeliveryFailed,
        }
    }
}

impl DisconnectError {
    /// This error's stable code.
    pub fn code(&self) -> HostErrorCode {
        match self {
            Self::UserOffline(_) => HostErrorCode::UserOffline,
            Self::NotRunning => HostErrorCode::NotRunning,
            Self::Delivery(_) => HostErrorCode::DeliveryFailed,
        }
    }
}

impl CommandError {
    /// This error's stable code.
    pub fn code(&self) -> HostErrorCode {
        match self {
            Self::Invalid(_) => HostErrorCode::InvalidArgument,
            Self::QueueFull(_) => HostErrorCode::Busy,
            Self::NotRunning => HostErrorCode::NotRunning,
            Self::Failed(_) => HostErrorCode::DeliveryFailed,
        }
    }
}

impl AckError {
    /// This error's stable code.
    pub fn code(&self) -> HostErrorCode {
        match self {
            Self::Unknown(_) => HostErrorCode::UnknownAck,
        }
    }
}

impl ChatError {
    /// This error's stable code where it reaches a host
    /// ([`Engine::serve_request`](crate::Engine::serve_request)); clients get
    /// [`ChatError::code`] itself.
    pub fn host_code(&self) -> HostErrorCode {
        match self.code {
            ErrorCode::ShuttingDown => HostErrorCode::NotRunning,
            _ => HostErrorCode::Internal,
        }
    }
}
