//! # The Palaver C ABI
//!
//! `libpalaver.so` / `libpalaver.a` with the header `include/palaver.h` (generated
//! from this crate by cbindgen, see `ffi/cbindgen.toml`). A C program creates a
//! configuration, an engine, registers one event callback, starts the engine,
//! drives it with commands and stops it:
//!
//! ```c
//! palaver_config *config = NULL;
//! palaver_config_new(&config);
//! palaver_config_set_port(config, 3000);
//! palaver_engine *engine = NULL;
//! palaver_engine_new(config, &engine);
//! palaver_config_free(config);
//! palaver_engine_set_callback(engine, on_event, &app);
//! palaver_engine_start(engine);
//! /* ... */
//! palaver_engine_stop(engine, 5000);
//! palaver_engine_free(engine);
//! ```
//!
//! With `palaver_config_set_builtin_chat(config, false)` the engine is a plain
//! Socket.IO server: every client event reaches the callback as a
//! `PALAVER_EVENT_SOCKET_EVENT` (all its arguments as JSON, binary ones as byte
//! views) and the host answers with socket.io's primitives (`sockets.rs`):
//!
//! ```c
//! /* in the callback: socket.emit("message-back", ...args) */
//! palaver_engine_emit_to_socket(engine, event->ns, event->sid, "message-back",
//!                               event->args_json, event->args_json_len,
//!                               event->attachments, event->attachments_count);
//! ```
//!
//! Rules kept by every function (and repeated in the header):
//! - every fallible call returns a `palaver_result`; `palaver_last_error` gives the
//!   text of the last failure on the calling thread;
//! - NULL or invalid arguments are `PALAVER_INVALID_ARG`, never a crash;
//! - a panic inside the library becomes `PALAVER_PANIC`; nothing unwinds into C;
//! - outputs are written only on success (sizes for too-small buffers excepted);
//! - each `_new` has a `_free`, and `_free(NULL)` does nothing.

#![allow(non_camel_case_types)] // C names: palaver_engine, palaver_result, ...

mod config;
mod engine;
mod error;
mod event;
mod sockets;

pub use config::{palaver_config, palaver_limit};
pub use engine::{palaver_engine, palaver_stats};
pub use error::palaver_result;
pub use event::{palaver_bytes, palaver_event, palaver_event_callback, palaver_event_kind};
pub use sockets::{palaver_target, palaver_target_flags};

/// The library version ("0.1.0"), a static NUL-terminated string; do not free it.
#[no_mangle]
pub extern "C" fn palaver_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
