//! `palaver_engine`: start, stop, commands, events, adopted connections.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use palaver_core::{AckId, AdoptError, Chat, ChatHandle, Config, EmitError, Engine, StopError};

use crate::config::palaver_config;
use crate::error::{
    boundary, boundary_void, fail, fail_with, json_arg, keeping_last_error, palaver_result,
    required_json_arg, str_arg, try_ffi, write_text,
};
use crate::event::{palaver_event_callback, with_c_event};

/// A chat engine. Opaque; made by `palaver_engine_new`, freed by
/// `palaver_engine_free`. Every function may be called from any thread.
pub struct palaver_engine {
    state: Mutex<State>,
}

struct State {
    config: Config,
    callback: Option<Callback>,
    /// The engine since `palaver_engine_start`, until a stop of it returned.
    running: Option<Arc<Engine>>,
}

/// The host's callback and its userdata, moved to the event thread.
#[derive(Clone, Copy)]
struct Callback {
    function: unsafe extern "C" fn(*mut c_void, *const crate::event::palaver_event),
    userdata: *mut c_void,
}

// SAFETY: the header documents that userdata is handed to the callback on the
// library's event thread; the host promises it may be used there.
unsafe impl Send for Callback {}

/// Counters and gauges of a running engine (`palaver_engine_stats`). Fields are
/// only ever added at the end; the library writes the whole struct, so a program
/// is built against the header of the library it runs with.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct palaver_stats {
    /// Socket.IO connections open now.
    pub connections: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections refused at connect since start.
    pub connections_refused: u64,
    /// Distinct users online now.
    pub users_online: u64,
    /// Rooms with members now.
    pub rooms: u64,
    /// Room messages stored and delivered since start.
    pub messages: u64,
    /// Private messages delivered since start.
    pub private_messages: u64,
    /// Requests refused with an error code since start.
    pub requests_rejected: u64,
    /// Packets not delivered because their client read too slowly, since start.
    pub packets_dropped: u64,
    /// Events dropped because the callback fell behind.
    pub events_dropped: u64,
    /// Custom events waiting for an answer now.
    pub pending_host_acks: u64,
    /// Milliseconds since start.
    pub uptime_ms: u64,
    /// Cluster mode only (else 0): Redis outages seen since start.
    pub redis_outages: u64,
    /// Cluster mode only (else 0): messages accepted during a Redis outage and not
    /// yet written to Redis.
    pub journal_pending: u64,
    /// Cluster mode only (else 0): nodes with a recent heartbeat, this one included
    /// (as of the last heartbeat; 0 when not known yet).
    pub nodes_alive: u64,
    /// Whether the engine runs in cluster mode (`palaver_config_set_redis_url`);
    /// when false, the cluster fields are all 0.
    pub cluster_mode: bool,
    /// Cluster mode only (else false): whether Redis answers now.
    pub redis_connected: bool,
    /// Events queued for the callback now.
    pub events_queued: u64,
    /// Bytes of events queued for the callback now (bounded by `event_queue_bytes`).
    pub events_queued_bytes: u64,
    /// Bytes of Socket.IO commands given and not yet applied now (bounded by
    /// `command_queue_bytes`; beyond it commands fail with `PALAVER_BUSY`).
    pub commands_queued_bytes: u64,
    /// Connections waiting at a connect gate for `palaver_engine_admit` /
    /// `palaver_engine_refuse` now.
    pub pending_gates: u64,
    /// Cluster mode only (else 0): messages from other nodes (Redis pub/sub)
    /// dropped since start because this node read them too slowly. Room lists are
    /// pushed again after a drop; a dropped room message stays in history.
    pub pubsub_dropped: u64,
}

impl palaver_engine {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running engine's command handle, without holding the lock while the
    /// command runs (a command may wait, and the callback may issue commands).
    pub(crate) fn handle(&self) -> Result<ChatHandle, palaver_result> {
        self.lock()
            .running
            .as_ref()
            .filter(|engine| engine.is_running())
            .map(|engine| engine.handle().clone())
            .ok_or_else(|| {
                fail(
                    palaver_result::PALAVER_NOT_RUNNING,
                    "the engine is not running",
                )
            })
    }
}

/// Borrows the engine or fails with `PALAVER_INVALID_ARG`.
pub(crate) unsafe fn engine_ref<'a>(
    engine: *const palaver_engine,
) -> Result<&'a palaver_engine, palaver_result> {
    if engine.is_null() {
        return Err(fail(palaver_result::PALAVER_INVALID_ARG, "engine is NULL"));
    }
    // SAFETY: non-NULL and made by this library per the callers' contracts.
    Ok(unsafe { &*engine })
}

/// Creates a stopped engine with a copy of `config` (NULL: every default). The
/// caller keeps `config` and frees it as usual. On success `*out` receives the
/// engine; free it with `palaver_engine_free`.
///
/// # Safety
/// `config` is NULL or made by this library; `out` is valid for writing.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_new(
    config: *const palaver_config,
    out: *mut *mut palaver_engine,
) -> palaver_result {
    boundary! {
        if out.is_null() {
            return fail(palaver_result::PALAVER_INVALID_ARG, "out is NULL");
        }
        let config = if config.is_null() {
            Config::default()
        } else {
            // SAFETY: made by this library per contract.
            unsafe { (*config).inner.clone() }
        };
        if let Err(e) = config.validate() {
            return fail_with(e.code(), e);
        }
        let engine = Box::new(palaver_engine {
            state: Mutex::new(State { config, callback: None, running: None }),
        });
        // SAFETY: checked non-NULL; valid per contract.
        unsafe { *out = Box::into_raw(engine) };
        palaver_result::PALAVER_OK
    }
}

/// Registers the event callback (NULL removes it); only while stopped, else
/// `PALAVER_ALREADY_STARTED`. Without a callback, custom events are refused to
/// clients with `unknown_event`.
///
/// Threading: the callback runs on one library thread ("palaver-events"), one event
/// at a time, never concurrently with itself, in the order events happened. It may
/// call any `palaver_engine_*` command (emit, ack, rooms, ...) but not
/// `palaver_engine_stop` or `palaver_engine_free` (`PALAVER_IN_CALLBACK`). A slow
/// callback never slows the chat: events it cannot keep up with are dropped and
/// counted in `events_dropped`. `userdata` is passed as is and must stay valid until
/// `palaver_engine_stop` or `palaver_engine_free` has returned; after that no
/// callback runs.
///
/// # Safety
/// `engine` was made by this library; `callback` is NULL or a function valid for the
/// engine's life; `userdata` meets the rules above.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_set_callback(
    engine: *mut palaver_engine,
    callback: palaver_event_callback,
    userdata: *mut c_void,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        let mut state = engine.lock();
        if state.running.is_some() {
            return fail(palaver_result::PALAVER_ALREADY_STARTED, "stop the engine before changing its callback");
        }
        state.callback = callback.map(|function| Callback { function, userdata });
        palaver_result::PALAVER_OK
    }
}

/// Starts the engine: binds (unless listen is off), starts its threads, returns
/// once clients can connect. `PALAVER_ALREADY_STARTED` when running (also while
/// a stop of it has not returned yet); `PALAVER_BIND_FAILED` when the port is
/// taken; `PALAVER_INVALID_CONFIG` when the configuration cannot work;
/// `PALAVER_START_FAILED` for other causes (see `palaver_last_error`). A stopped
/// engine may be started again.
///
/// # Safety
/// `engine` was made by this library.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_start(engine: *mut palaver_engine) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        let mut state = engine.lock();
        if state.running.is_some() {
            return fail(palaver_result::PALAVER_ALREADY_STARTED, "the engine is already running");
        }
        let mut builder = Chat::builder(state.config.clone());
        if let Some(callback) = state.callback {
            builder = builder.on_event(move |event| {
                let callback = callback;
                with_c_event(&event, |c_event| {
                    // SAFETY: the host registered a valid function and userdata.
                    unsafe { (callback.function)(callback.userdata, c_event) }
                });
            });
        }
        match builder.start() {
            Ok(running) => {
                state.running = Some(Arc::new(running));
                palaver_result::PALAVER_OK
            }
            Err(e) => fail_with(e.code(), e),
        }
    }
}

/// Writes the bound port of a running engine into `*out_port`.
///
/// # Safety
/// `engine` was made by this library; `out_port` is valid for writing.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_port(
    engine: *const palaver_engine,
    out_port: *mut u16,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        if out_port.is_null() {
            return fail(palaver_result::PALAVER_INVALID_ARG, "out_port is NULL");
        }
        let state = engine.lock();
        let Some(addr) = state.running.as_ref().and_then(|e| e.local_addr()) else {
            return fail(palaver_result::PALAVER_NOT_RUNNING, "the engine is not listening");
        };
        // SAFETY: checked non-NULL; valid per contract.
        unsafe { *out_port = addr.port() };
        palaver_result::PALAVER_OK
    }
}

/// Stops gracefully within `timeout_ms`: clients get `shutdown` and a disconnect,
/// accepted messages are stored and delivered, every connection and thread ends.
/// Returns when all is done; no callback runs after that. Stopping an engine that
/// was never started or is stopped returns `PALAVER_NOT_RUNNING` at once and does
/// nothing else. When two threads stop the engine at the same time, one stops it
/// and gets `PALAVER_OK`; the other waits until that stop is over (so no callback
/// runs after it returns either) and gets `PALAVER_NOT_RUNNING`. From inside the
/// callback: `PALAVER_IN_CALLBACK`, and the engine keeps running. Once stopped,
/// the engine may be started again.
///
/// # Safety
/// `engine` was made by this library.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_stop(
    engine: *mut palaver_engine,
    timeout_ms: u32,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        stop(engine, Duration::from_millis(u64::from(timeout_ms)))
    }
}

/// Stops the running engine with core's `Engine::stop`, which also settles
/// concurrent stops: a second caller waits there for the first to finish and gets
/// `StopError::AlreadyStopped` (`PALAVER_NOT_RUNNING`).
fn stop(engine: &palaver_engine, timeout: Duration) -> palaver_result {
    // The lock is not held while stopping: the callback runs its last events
    // meanwhile and may call commands, which take the lock.
    let Some(running) = engine.lock().running.clone() else {
        return fail(
            palaver_result::PALAVER_NOT_RUNNING,
            "the engine is not running",
        );
    };
    let result = running.stop(timeout);
    if !matches!(result, Err(StopError::InsideEventCallback)) {
        // This engine is stopped for good (by this call or, once this call
        // returned, by another): forget it, so that it can be started again. A
        // newer engine (started after another caller forgot this one) stays.
        let mut state = engine.lock();
        if state
            .running
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, &running))
        {
            state.running = None;
        }
    }
    match result {
        Ok(_report) => palaver_result::PALAVER_OK,
        Err(e) => fail_with(e.code(), e),
    }
}

/// Stops the engine if it runs (with a 5 s deadline) and frees it. NULL is ignored.
/// Must not be called from the event callback (it is then left running and not
/// freed, and an error is logged).
///
/// # Safety
/// `engine` is NULL or was made by this library and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_free(engine: *mut palaver_engine) {
    boundary_void! {
        if engine.is_null() {
            return;
        }
        // SAFETY: made by this library per contract. Free reports no result, so the
        // stop inside it (PALAVER_NOT_RUNNING for a stopped engine) leaves no error text.
        let result = keeping_last_error(|| stop(unsafe { &*engine }, Duration::from_secs(5)));
        if result == palaver_result::PALAVER_IN_CALLBACK {
            tracing::error!("palaver_engine_free called from the event callback; ignored");
            return;
        }
        // SAFETY: made by Box::into_raw in this library, freed once per contract.
        drop(unsafe { Box::from_raw(engine) });
    }
}

/// Runs a command on the engine's runtime and waits for it.
pub(crate) fn run<T: Send + 'static>(
    handle: &ChatHandle,
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, palaver_result> {
    handle
        .block_on(work)
        .ok_or_else(|| fail(palaver_result::PALAVER_NOT_RUNNING, "the engine stopped"))
}

fn emit_result(result: Result<(), EmitError>) -> palaver_result {
    match result {
        Ok(()) => palaver_result::PALAVER_OK,
        Err(e) => fail_with(e.code(), e),
    }
}

/// Emits `event` with the JSON `data_json` (NULL: null) to every client.
///
/// # Safety
/// `engine` was made by this library; strings are NUL-terminated (or NULL where
/// allowed).
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_emit_to_all(
    engine: *const palaver_engine,
    event: *const c_char,
    data_json: *const c_char,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        // SAFETY: forwarded contract.
        let event = try_ffi!(unsafe { str_arg(event, "event") });
        // SAFETY: forwarded contract.
        let data = try_ffi!(unsafe { json_arg(data_json, "data_json") });
        let handle = try_ffi!(engine.handle());
        emit_result(try_ffi!(run(&handle, handle.emit_to_all(event, data))))
    }
}

/// Emits `event` with the JSON `data_json` (NULL: null) to every connection in
/// `room` (nothing when nobody is in it).
///
/// # Safety
/// `engine` was made by this library; strings are NUL-terminated (or NULL where
/// allowed).
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_emit_to_room(
    engine: *const palaver_engine,
    room: *const c_char,
    event: *const c_char,
    data_json: *const c_char,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        // SAFETY: forwarded contract.
        let room = try_ffi!(unsafe { str_arg(room, "room") });
        // SAFETY: forwarded contract.
        let event = try_ffi!(unsafe { str_arg(event, "event") });
        // SAFETY: forwarded contract.
        let data = try_ffi!(unsafe { json_arg(data_json, "data_json") });
        let handle = try_ffi!(engine.handle());
        emit_result(try_ffi!(run(&handle, handle.emit_to_room(room, event, data))))
    }
}

/// Emits `event` with the JSON `data_json` (NULL: null) to every connection of the
/// user `user_id`; `PALAVER_USER_OFFLINE` when they have none.
///
/// # Safety
/// `engine` was made by this library; strings are NUL-terminated (or NULL where
/// allowed).
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_emit_to_user(
    engine: *const palaver_engine,
    user_id: *const c_char,
    event: *const c_char,
    data_json: *const c_char,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        // SAFETY: forwarded contract.
        let user_id = try_ffi!(unsafe { str_arg(user_id, "user_id") });
        // SAFETY: forwarded contract.
        let event = try_ffi!(unsafe { str_arg(event, "event") });
        // SAFETY: forwarded contract.
        let data = try_ffi!(unsafe { json_arg(data_json, "data_json") });
        let handle = try_ffi!(engine.handle());
        emit_result(try_ffi!(run(&handle, handle.emit_to_user(user_id, event, data))))
    }
}

/// Disconnects every connection of `user_id`, after sending them `kicked {reason}`
/// (`reason` NULL: "disconnected by the server"). `*out_count` (if not NULL)
/// receives the number of connections closed. Returns once this node has handled
/// them (the user is out of its presence and rooms). `PALAVER_USER_OFFLINE` when none.
///
/// # Safety
/// `engine` was made by this library; strings are NUL-terminated (or NULL where
/// allowed); `out_count` is NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_disconnect_user(
    engine: *const palaver_engine,
    user_id: *const c_char,
    reason: *const c_char,
    out_count: *mut usize,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        // SAFETY: forwarded contract.
        let user_id = try_ffi!(unsafe { str_arg(user_id, "user_id") });
        // SAFETY: forwarded contract.
        let reason = try_ffi!(unsafe { crate::error::optional_str_arg(reason, "reason") })
            .unwrap_or("disconnected by the server");
        let handle = try_ffi!(engine.handle());
        match try_ffi!(run(&handle, handle.disconnect_user(user_id, reason))) {
            Ok(count) => {
                if !out_count.is_null() {
                    // SAFETY: non-NULL, valid per contract.
                    unsafe { *out_count = count };
                }
                palaver_result::PALAVER_OK
            }
            Err(e) => fail_with(e.code(), e),
        }
    }
}

/// Writes the rooms with their members as a NUL-terminated JSON array
/// (`[{"room","count","members":[{"id","name"}]}]`, most populated first) into
/// `buf`. `*out_len` (if not NULL) receives the size needed, NUL included; when
/// `len` is smaller, nothing is written and `PALAVER_BUFFER_TOO_SMALL` is returned
/// (call again with a buffer that large; `buf` may be NULL with `len` 0 to ask).
///
/// # Safety
/// `engine` was made by this library; `buf` is NULL or valid for `len` bytes;
/// `out_len` is NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_rooms(
    engine: *const palaver_engine,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        let handle = try_ffi!(engine.handle());
        let rooms = try_ffi!(run(&handle, handle.rooms()));
        let json = serde_json::to_string(&rooms).unwrap_or_else(|_| "[]".into());
        // SAFETY: forwarded contract.
        let result = unsafe { write_text(&json, buf, len, out_len) };
        if result == palaver_result::PALAVER_BUFFER_TOO_SMALL {
            return fail(result, format!("the rooms need {} bytes, {len} given", json.len() + 1));
        }
        result
    }
}

/// Fills `*out` with the engine's counters (and, in cluster mode, the state of
/// its Redis connection). `PALAVER_NOT_RUNNING` when it is not running.
///
/// # Safety
/// `engine` was made by this library; `out` is valid for writing.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_stats(
    engine: *const palaver_engine,
    out: *mut palaver_stats,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        if out.is_null() {
            return fail(palaver_result::PALAVER_INVALID_ARG, "out is NULL");
        }
        let stats = try_ffi!(engine.handle()).stats();
        let c_stats = palaver_stats {
            connections: stats.connections,
            connections_total: stats.connections_total,
            connections_refused: stats.connections_refused,
            users_online: stats.users_online,
            rooms: stats.rooms,
            messages: stats.messages,
            private_messages: stats.private_messages,
            requests_rejected: stats.requests_rejected,
            packets_dropped: stats.packets_dropped,
            events_dropped: stats.events_dropped,
            pending_host_acks: stats.pending_host_acks,
            uptime_ms: stats.uptime_ms,
            redis_outages: stats.cluster.as_ref().map_or(0, |c| c.redis_outages),
            journal_pending: stats.cluster.as_ref().map_or(0, |c| c.journal_pending),
            nodes_alive: stats.cluster.as_ref().map_or(0, |c| c.nodes_alive),
            cluster_mode: stats.cluster.is_some(),
            redis_connected: stats.cluster.as_ref().is_some_and(|c| c.redis_connected),
            events_queued: stats.events_queued,
            events_queued_bytes: stats.events_queued_bytes,
            commands_queued_bytes: stats.commands_queued_bytes,
            pending_gates: stats.pending_gates,
            pubsub_dropped: stats.cluster.as_ref().map_or(0, |c| c.pubsub_dropped),
        };
        // SAFETY: checked non-NULL; valid per contract.
        unsafe { *out = c_stats };
        palaver_result::PALAVER_OK
    }
}

/// Answers a custom event (the event's `ack_id`) with the JSON `answer_json`, which
/// the client receives exactly as given. May be called from any thread, inside or
/// after the callback. `PALAVER_UNKNOWN_ACK` when it was answered already, expired
/// (10 s by default) or its client left. A socket event is answered with
/// `palaver_engine_ack_args` instead (every argument of the client's callback,
/// binary ones too, in order with the other Socket.IO commands); given here, its
/// callback gets `answer_json` as its one argument.
///
/// # Safety
/// `engine` was made by this library; `answer_json` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_ack(
    engine: *const palaver_engine,
    ack_id: u64,
    answer_json: *const c_char,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        // SAFETY: forwarded contract. Not `json_arg`: NULL is no answer here.
        let answer = try_ffi!(unsafe { required_json_arg(answer_json, "answer_json") });
        let handle = try_ffi!(engine.handle());
        match handle.ack(AckId(ack_id), answer) {
            Ok(()) => palaver_result::PALAVER_OK,
            Err(e) => fail_with(e.code(), e),
        }
    }
}

/// Hands an accepted TCP connection to the engine: `fd` is the connected socket and
/// `already_read` (`len` bytes; NULL when 0) what the host already read from it,
/// for example an HTTP request head asking for a WebSocket upgrade under
/// `/socket.io/`. The engine reads those bytes first, then the socket.
///
/// Ownership: when the result is `PALAVER_INVALID_ARG` or `PALAVER_NOT_RUNNING`
/// the caller still owns `fd`; in every other case (success included) the engine
/// owns it and closes it. The bytes are copied; the caller keeps its buffer.
///
/// # Safety
/// `engine` was made by this library; `fd` is an open, connected TCP socket not
/// used by the caller afterwards (see Ownership); `already_read` is valid for
/// `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_adopt(
    engine: *const palaver_engine,
    fd: i32,
    already_read: *const u8,
    len: usize,
) -> palaver_result {
    boundary! {
        use std::os::fd::FromRawFd;
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        if fd < 0 {
            return fail(palaver_result::PALAVER_INVALID_ARG, "fd is negative");
        }
        if already_read.is_null() && len > 0 {
            return fail(palaver_result::PALAVER_INVALID_ARG, "already_read is NULL but len is not 0");
        }
        let running = engine.lock().running.clone();
        let Some(running) = running.filter(|e| e.is_running()) else {
            return fail(palaver_result::PALAVER_NOT_RUNNING, "the engine is not running");
        };
        let bytes = if len == 0 {
            Bytes::new()
        } else {
            // SAFETY: valid for `len` bytes per contract.
            Bytes::copy_from_slice(unsafe { std::slice::from_raw_parts(already_read, len) })
        };
        // SAFETY: the caller hands over an open socket it no longer uses.
        let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        match running.adopt(stream, bytes) {
            Ok(()) => palaver_result::PALAVER_OK,
            // Not the table's PALAVER_NOT_RUNNING: that result promises the caller
            // still owns `fd` (checked above, before the hand-over), but the engine
            // stopped after `fd` became a TcpStream, which core dropped, closing
            // it. The caller must not use or close `fd` again: PALAVER_IO_ERROR.
            Err(AdoptError::NotRunning) => fail(
                palaver_result::PALAVER_IO_ERROR,
                "the engine stopped meanwhile; the socket was closed",
            ),
            Err(e) => fail_with(e.code(), e),
        }
    }
}
