//! The Socket.IO engine in C: host namespaces whose connections the host drives
//! with socket.io's primitives.
//!
//! Commands (`palaver_engine_run` with core's JSON form, and one typed function
//! per common command) are queued on the engine's one ordered command queue and
//! return at once; queries (`palaver_engine_query`, `palaver_engine_fetch_sockets`,
//! `palaver_engine_emit_with_ack`) block the calling thread until core answers
//! them, after the commands given before them.
//!
//! Names (namespace, connection id, event, room) are NUL-terminated strings, as in
//! the other commands; JSON texts and binary data are buffers with their lengths.

use std::ffi::{c_char, CString};

use bytes::Bytes;
use palaver_core::{
    AckId, CommandError, GateDecision, GateId, OutArgs, QueryAnswer, SocketCommand, SocketQuery,
    Target,
};

use crate::engine::{engine_ref, palaver_engine, run};
use crate::error::{
    boundary, boundary_void, bytes_arg, fail, fail_with, optional_str_arg, palaver_result, str_arg,
    text_arg, try_ffi,
};
use crate::event::palaver_bytes;

/// Bits of `palaver_target.flags`. The type is `uint32_t`.
#[repr(u32)]
#[derive(Debug, Clone, Copy)]
pub enum palaver_target_flags {
    /// Skip connections that cannot take the packet now instead of queueing it
    /// (socket.io's `volatile`).
    PALAVER_TARGET_VOLATILE = 1,
    /// This node only, in cluster mode (socket.io's `local`).
    PALAVER_TARGET_LOCAL = 2,
}

/// Who an emit, a query or a room command reaches: socket.io's
/// `io.of(ns).to(rooms).except(rooms)` as a plain value, read during the call
/// only. Every connection is also in a room named by its connection id, so
/// `rooms` or `except` may name connections. A zeroed target, or NULL where a
/// `const palaver_target *` is taken, is every connection of "/":
///
/// ```c
/// const char *rooms[] = {"lobby"};
/// const char *except[] = {event->sid};
/// palaver_target to = {.ns = "/", .rooms = rooms, .rooms_count = 1,
///                      .except = except, .except_count = 1};
/// ```
#[repr(C)]
pub struct palaver_target {
    /// The namespace; NULL is "/".
    pub ns: *const c_char,
    /// `rooms_count` NUL-terminated room names (NULL when 0). None: every
    /// connection of the namespace.
    pub rooms: *const *const c_char,
    /// How many names `rooms` points to.
    pub rooms_count: usize,
    /// `except_count` rooms (or connection ids) left out (NULL when 0).
    pub except: *const *const c_char,
    /// How many names `except` points to.
    pub except_count: usize,
    /// `palaver_target_flags` bits, or 0; other bits are `PALAVER_INVALID_ARG`.
    pub flags: u32,
}

/// `count` NUL-terminated UTF-8 names; NULL is none when `count` is 0.
///
/// # Safety
/// `names` is NULL or valid for `count` pointers, each to a NUL-terminated string.
unsafe fn names_arg(
    names: *const *const c_char,
    count: usize,
    what: &str,
) -> Result<Vec<String>, palaver_result> {
    if names.is_null() {
        if count == 0 {
            return Ok(Vec::new());
        }
        return Err(fail(
            palaver_result::PALAVER_INVALID_ARG,
            format!("{what} is NULL but its count is {count}"),
        ));
    }
    // SAFETY: valid for `count` pointers per contract.
    let names = unsafe { std::slice::from_raw_parts(names, count) };
    names
        .iter()
        .enumerate()
        // SAFETY: each a NUL-terminated string (NULL is refused) per contract.
        .map(|(i, name)| unsafe { str_arg(*name, &format!("{what}[{i}]")) }.map(str::to_string))
        .collect()
}

/// A namespace argument: NULL is "/".
///
/// # Safety
/// `ns` is NULL or a NUL-terminated string.
unsafe fn ns_arg<'a>(ns: *const c_char) -> Result<&'a str, palaver_result> {
    // SAFETY: forwarded contract.
    Ok(unsafe { optional_str_arg(ns, "ns") }?.unwrap_or("/"))
}

/// The core target of a C target; NULL is every connection of "/".
///
/// # Safety
/// `to` is NULL or a `palaver_target` whose pointers meet its documentation.
unsafe fn target_arg(to: *const palaver_target) -> Result<Target, palaver_result> {
    if to.is_null() {
        return Ok(Target::default());
    }
    // SAFETY: non-NULL and valid per contract.
    let to = unsafe { &*to };
    let known = palaver_target_flags::PALAVER_TARGET_VOLATILE as u32
        | palaver_target_flags::PALAVER_TARGET_LOCAL as u32;
    if to.flags & !known != 0 {
        return Err(fail(
            palaver_result::PALAVER_INVALID_ARG,
            format!(
                "flags {:#x} has bits no palaver_target_flags names",
                to.flags
            ),
        ));
    }
    Ok(Target {
        // SAFETY: forwarded contract.
        ns: unsafe { ns_arg(to.ns) }?.to_string(),
        // SAFETY: forwarded contract.
        rooms: unsafe { names_arg(to.rooms, to.rooms_count, "to->rooms") }?,
        // SAFETY: forwarded contract.
        except: unsafe { names_arg(to.except, to.except_count, "to->except") }?,
        volatile: to.flags & palaver_target_flags::PALAVER_TARGET_VOLATILE as u32 != 0,
        local: to.flags & palaver_target_flags::PALAVER_TARGET_LOCAL as u32 != 0,
    })
}

/// Copies `count` byte views.
///
/// # Safety
/// `attachments` is NULL or valid for `count` views, each valid for its bytes.
unsafe fn attachments_arg(
    attachments: *const palaver_bytes,
    count: usize,
) -> Result<Vec<Bytes>, palaver_result> {
    if attachments.is_null() {
        if count == 0 {
            return Ok(Vec::new());
        }
        return Err(fail(
            palaver_result::PALAVER_INVALID_ARG,
            format!("attachments is NULL but attachments_count is {count}"),
        ));
    }
    // SAFETY: valid for `count` views per contract.
    let views = unsafe { std::slice::from_raw_parts(attachments, count) };
    views
        .iter()
        .enumerate()
        .map(|(i, view)| {
            // SAFETY: each view is valid for its bytes per contract.
            unsafe { bytes_arg(view.data, view.len, &format!("attachments[{i}].data")) }
                .map(Bytes::copy_from_slice)
        })
        .collect()
}

/// Outgoing arguments: the JSON array `args_json` (NULL with length 0: none) and
/// the attachments its placeholders name.
///
/// # Safety
/// As [`text_arg`] and [`attachments_arg`].
unsafe fn args_arg(
    args_json: *const c_char,
    args_json_len: usize,
    attachments: *const palaver_bytes,
    attachments_count: usize,
) -> Result<OutArgs, palaver_result> {
    // SAFETY: forwarded contract.
    let json = unsafe { text_arg(args_json, args_json_len, "args_json") }?;
    // SAFETY: forwarded contract.
    let attachments = unsafe { attachments_arg(attachments, attachments_count) }?;
    if json.is_empty() {
        if !attachments.is_empty() {
            return Err(fail(
                palaver_result::PALAVER_INVALID_ARG,
                "attachments are given without args_json naming them",
            ));
        }
        return Ok(OutArgs::default());
    }
    OutArgs::from_json(json, attachments).map_err(|e| {
        fail(
            palaver_result::PALAVER_INVALID_ARG,
            format!("args_json: {e}"),
        )
    })
}

fn command_result(result: Result<(), CommandError>) -> palaver_result {
    match result {
        Ok(()) => palaver_result::PALAVER_OK,
        Err(e) => fail_with(e.code(), e),
    }
}

/// Queues commands on a running engine.
///
/// # Safety
/// `engine` is NULL or made by this library.
unsafe fn run_commands(
    engine: *const palaver_engine,
    commands: Vec<SocketCommand>,
) -> palaver_result {
    // SAFETY: forwarded contract.
    let engine = try_ffi!(unsafe { engine_ref(engine) });
    let handle = try_ffi!(engine.handle());
    command_result(handle.run(commands))
}

/// Asks a running engine and writes the answer's JSON into `*out_json` and its
/// length into `*out_len`.
///
/// # Safety
/// `engine` is NULL or made by this library; `out_json` and `out_len` are NULL or
/// valid for writing.
unsafe fn answer_query(
    engine: *const palaver_engine,
    query: Result<SocketQuery, palaver_result>,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> palaver_result {
    // SAFETY: forwarded contract.
    let engine = try_ffi!(unsafe { engine_ref(engine) });
    if out_json.is_null() {
        return fail(palaver_result::PALAVER_INVALID_ARG, "out_json is NULL");
    }
    let query = try_ffi!(query);
    let handle = try_ffi!(engine.handle());
    let answer: QueryAnswer = match try_ffi!(run(&handle, handle.query(query))) {
        Ok(answer) => answer,
        Err(e) => return fail_with(e.code(), e),
    };
    let json = serde_json::to_string(&answer).unwrap_or_else(|_| "[]".into());
    let len = json.len();
    let Ok(text) = CString::new(json) else {
        return fail(
            palaver_result::PALAVER_PANIC,
            "the answer's JSON holds a NUL",
        );
    };
    // SAFETY: checked non-NULL; valid per contract.
    unsafe { *out_json = text.into_raw() };
    if !out_len.is_null() {
        // SAFETY: non-NULL, valid per contract.
        unsafe { *out_len = len };
    }
    palaver_result::PALAVER_OK
}

/// Applies Socket.IO commands in their JSON form: an array of `{"<op>": {...}}`
/// objects, applied in order, after every command given before (from any
/// thread: one queue). The ops, as in docs/PROTOCOL.md:
/// `emit_to {ns?, sid, event, args?, bin?, volatile?}`,
/// `emit {to?: {ns?, rooms?, except?, volatile?, local?}, event, args?, bin?}`,
/// `join` / `leave {ns?, sid, rooms}`, `sockets_join` / `sockets_leave {to, rooms}`,
/// `disconnect {ns?, sid, close?}`, `disconnect_sockets {to, close?}`,
/// `ack {ack, args?, bin?}`, `admit {gate, refuse?: "message"}`,
/// `listen {ns?, sid, events?}`, `namespace {ns, gated?}`. `ns` defaults to "/",
/// `args` (a JSON array) to `[]`. `attachments` holds the binary arguments of the
/// whole batch in order; each command with arguments takes the next `bin` (default
/// 0) of them, which its placeholders `{"_placeholder":true,"num":N}` name from 0.
///
/// Returns once the batch is queued (the bytes are copied). A command for a
/// connection that has gone does nothing, as in socket.io. `PALAVER_INVALID_ARG`
/// when the JSON or a command is malformed (nothing of the batch is applied then),
/// `PALAVER_BUSY` when `command_queue_bytes` of commands wait already,
/// `PALAVER_NOT_RUNNING` when the engine is not running. Any thread, the event
/// callback included.
///
/// # Safety
/// `engine` was made by this library; `commands_json` is valid for
/// `commands_json_len` bytes; `attachments` is NULL (with count 0) or valid for
/// `attachments_count` views, each valid for its bytes.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_run(
    engine: *const palaver_engine,
    commands_json: *const c_char,
    commands_json_len: usize,
    attachments: *const palaver_bytes,
    attachments_count: usize,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let engine = try_ffi!(unsafe { engine_ref(engine) });
        if commands_json.is_null() {
            return fail(palaver_result::PALAVER_INVALID_ARG, "commands_json is NULL");
        }
        // SAFETY: forwarded contract.
        let json = try_ffi!(unsafe { text_arg(commands_json, commands_json_len, "commands_json") });
        // SAFETY: forwarded contract.
        let attachments = try_ffi!(unsafe { attachments_arg(attachments, attachments_count) });
        let handle = try_ffi!(engine.handle());
        command_result(handle.run_json(json, attachments))
    }
}

/// Emits `event` to one connection (`socket.emit(event, ...args)`): `sid` of
/// namespace `ns` (NULL: "/"). `args_json` is a JSON array whose elements are the
/// event's arguments (NULL with length 0: none); a placeholder
/// `{"_placeholder":true,"num":N}` in it is sent as the binary `attachments[N]`.
/// Queued in order with the other commands, as `palaver_engine_run`, with its
/// results.
///
/// # Safety
/// `engine` was made by this library; `ns` is NULL or NUL-terminated; `sid` and
/// `event` are NUL-terminated; `args_json` is valid for `args_json_len` bytes;
/// `attachments` as for `palaver_engine_run`.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_emit_to_socket(
    engine: *const palaver_engine,
    ns: *const c_char,
    sid: *const c_char,
    event: *const c_char,
    args_json: *const c_char,
    args_json_len: usize,
    attachments: *const palaver_bytes,
    attachments_count: usize,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let ns = try_ffi!(unsafe { ns_arg(ns) });
        // SAFETY: forwarded contract.
        let sid = try_ffi!(unsafe { str_arg(sid, "sid") });
        // SAFETY: forwarded contract.
        let event = try_ffi!(unsafe { str_arg(event, "event") });
        // SAFETY: forwarded contract.
        let args = try_ffi!(unsafe { args_arg(args_json, args_json_len, attachments, attachments_count) });
        let command = SocketCommand::EmitTo {
            ns: ns.into(),
            sid: sid.into(),
            event: event.into(),
            args,
            volatile: false,
        };
        // SAFETY: forwarded contract.
        unsafe { run_commands(engine, vec![command]) }
    }
}

/// Emits `event` to a target (`io.to(rooms).except(rooms).emit(event, ...args)`;
/// NULL `to`: every connection of "/"). Arguments as for
/// `palaver_engine_emit_to_socket`; queued in order with the other commands.
///
/// # Safety
/// `engine` was made by this library; `to` is NULL or a `palaver_target` as
/// documented; `event` is NUL-terminated; `args_json` and `attachments` as for
/// `palaver_engine_emit_to_socket`.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_emit(
    engine: *const palaver_engine,
    to: *const palaver_target,
    event: *const c_char,
    args_json: *const c_char,
    args_json_len: usize,
    attachments: *const palaver_bytes,
    attachments_count: usize,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let to = try_ffi!(unsafe { target_arg(to) });
        // SAFETY: forwarded contract.
        let event = try_ffi!(unsafe { str_arg(event, "event") });
        // SAFETY: forwarded contract.
        let args = try_ffi!(unsafe { args_arg(args_json, args_json_len, attachments, attachments_count) });
        // SAFETY: forwarded contract.
        unsafe { run_commands(engine, vec![SocketCommand::Emit { to, event: event.into(), args }]) }
    }
}

/// Puts connection `sid` of `ns` (NULL: "/") in `rooms_count` rooms
/// (`socket.join(rooms)`). Queued in order: an emit to those rooms given after it
/// reaches the connection.
///
/// # Safety
/// `engine` was made by this library; `ns` is NULL or NUL-terminated; `sid` is
/// NUL-terminated; `rooms` is valid for `rooms_count` NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_join(
    engine: *const palaver_engine,
    ns: *const c_char,
    sid: *const c_char,
    rooms: *const *const c_char,
    rooms_count: usize,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let ns = try_ffi!(unsafe { ns_arg(ns) }).to_string();
        // SAFETY: forwarded contract.
        let sid = try_ffi!(unsafe { str_arg(sid, "sid") }).to_string();
        // SAFETY: forwarded contract.
        let rooms = try_ffi!(unsafe { names_arg(rooms, rooms_count, "rooms") });
        // SAFETY: forwarded contract.
        unsafe { run_commands(engine, vec![SocketCommand::Join { ns, sid, rooms }]) }
    }
}

/// Takes connection `sid` of `ns` (NULL: "/") out of `rooms_count` rooms
/// (`socket.leave(room)`). Queued in order with the other commands.
///
/// # Safety
/// As `palaver_engine_join`.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_leave(
    engine: *const palaver_engine,
    ns: *const c_char,
    sid: *const c_char,
    rooms: *const *const c_char,
    rooms_count: usize,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let ns = try_ffi!(unsafe { ns_arg(ns) }).to_string();
        // SAFETY: forwarded contract.
        let sid = try_ffi!(unsafe { str_arg(sid, "sid") }).to_string();
        // SAFETY: forwarded contract.
        let rooms = try_ffi!(unsafe { names_arg(rooms, rooms_count, "rooms") });
        // SAFETY: forwarded contract.
        unsafe { run_commands(engine, vec![SocketCommand::Leave { ns, sid, rooms }]) }
    }
}

/// Disconnects connection `sid` from `ns` (NULL: "/"), `socket.disconnect()`: the
/// client gets "io server disconnect" there. With `close`, from every namespace,
/// which closes the connection (`socket.disconnect(true)`). Queued in order with
/// the other commands.
///
/// # Safety
/// `engine` was made by this library; `ns` is NULL or NUL-terminated; `sid` is
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_disconnect_socket(
    engine: *const palaver_engine,
    ns: *const c_char,
    sid: *const c_char,
    close: bool,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let ns = try_ffi!(unsafe { ns_arg(ns) }).to_string();
        // SAFETY: forwarded contract.
        let sid = try_ffi!(unsafe { str_arg(sid, "sid") }).to_string();
        // SAFETY: forwarded contract.
        unsafe { run_commands(engine, vec![SocketCommand::Disconnect { ns, sid, close }]) }
    }
}

/// Answers a socket event's acknowledgement (its nonzero `ack_id`): the client's
/// callback gets the elements of the JSON array `args_json` as its arguments
/// (NULL with length 0: none), placeholders as the binary `attachments[N]`.
/// Queued in order with the other commands; an acknowledgement that is no longer
/// pending (answered, expired after `host_ack_timeout_ms`, client gone) is
/// ignored, as socket.io does. `ack_id` 0 is `PALAVER_INVALID_ARG`.
///
/// # Safety
/// `engine` was made by this library; `args_json` and `attachments` as for
/// `palaver_engine_emit_to_socket`.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_ack_args(
    engine: *const palaver_engine,
    ack_id: u64,
    args_json: *const c_char,
    args_json_len: usize,
    attachments: *const palaver_bytes,
    attachments_count: usize,
) -> palaver_result {
    boundary! {
        if ack_id == 0 {
            return fail(palaver_result::PALAVER_INVALID_ARG, "ack_id 0 is no acknowledgement (the client asked for none)");
        }
        // SAFETY: forwarded contract.
        let args = try_ffi!(unsafe { args_arg(args_json, args_json_len, attachments, attachments_count) });
        // SAFETY: forwarded contract.
        unsafe { run_commands(engine, vec![SocketCommand::Ack { ack: AckId(ack_id), args }]) }
    }
}

/// Lets the connection waiting at a connect gate in (the event's nonzero
/// `gate_id`): the client gets its `connect`, and the host a
/// `PALAVER_EVENT_SOCKET_CONNECT`. Queued in order with the other commands; a gate
/// no longer waiting (decided, past `host_ack_timeout_ms`, client gone) is
/// ignored. `gate_id` 0 is `PALAVER_INVALID_ARG`.
///
/// # Safety
/// `engine` was made by this library.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_admit(
    engine: *const palaver_engine,
    gate_id: u64,
) -> palaver_result {
    boundary! {
        if gate_id == 0 {
            return fail(palaver_result::PALAVER_INVALID_ARG, "gate_id 0 is no gate");
        }
        let command = SocketCommand::Admit { gate: GateId(gate_id), decision: GateDecision::Accept };
        // SAFETY: forwarded contract.
        unsafe { run_commands(engine, vec![command]) }
    }
}

/// Keeps the connection waiting at a connect gate out: the client gets
/// `connect_error` with `message` (socket.io's `next(new Error(message))`).
/// Otherwise as `palaver_engine_admit`.
///
/// # Safety
/// `engine` was made by this library; `message` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_refuse(
    engine: *const palaver_engine,
    gate_id: u64,
    message: *const c_char,
) -> palaver_result {
    boundary! {
        if gate_id == 0 {
            return fail(palaver_result::PALAVER_INVALID_ARG, "gate_id 0 is no gate");
        }
        // SAFETY: forwarded contract.
        let message = try_ffi!(unsafe { str_arg(message, "message") }).to_string();
        let command = SocketCommand::Admit { gate: GateId(gate_id), decision: GateDecision::Refuse { message } };
        // SAFETY: forwarded contract.
        unsafe { run_commands(engine, vec![command]) }
    }
}

/// Chooses which events of connection `sid` of `ns` (NULL: "/") reach the
/// callback: the `events_count` names in `events`, or every event when `events`
/// is NULL (socket.io's `onAny`). Until the first call for a connection every
/// event of it does, so that none is lost while the host sets it up; the others
/// are dropped as socket.io drops events nobody listens to. Queued in order with
/// the other commands: an emit given after it reaches the client after the
/// change.
///
/// # Safety
/// `engine` was made by this library; `ns` is NULL or NUL-terminated; `sid` is
/// NUL-terminated; `events` is NULL or valid for `events_count` NUL-terminated
/// strings.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_listen(
    engine: *const palaver_engine,
    ns: *const c_char,
    sid: *const c_char,
    events: *const *const c_char,
    events_count: usize,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let ns = try_ffi!(unsafe { ns_arg(ns) }).to_string();
        // SAFETY: forwarded contract.
        let sid = try_ffi!(unsafe { str_arg(sid, "sid") }).to_string();
        let events = if events.is_null() {
            if events_count != 0 {
                return fail(palaver_result::PALAVER_INVALID_ARG, "events is NULL but events_count is not 0");
            }
            None
        } else {
            // SAFETY: forwarded contract.
            Some(try_ffi!(unsafe { names_arg(events, events_count, "events") }))
        };
        // SAFETY: forwarded contract.
        unsafe { run_commands(engine, vec![SocketCommand::Listen { ns, sid, events }]) }
    }
}

/// Makes `ns` ("/admin": a '/', at most 256 bytes, no ',' or '?') a host
/// namespace clients may connect to, or changes whether it is `gated`: a new
/// connection to a gated namespace waits for `palaver_engine_admit` or
/// `palaver_engine_refuse` (`PALAVER_EVENT_SOCKET_GATE`). Works with the built-in
/// chat too, which keeps "/". Queued in order: a query after it sees it.
///
/// # Safety
/// `engine` was made by this library; `ns` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_namespace(
    engine: *const palaver_engine,
    ns: *const c_char,
    gated: bool,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let ns = try_ffi!(unsafe { str_arg(ns, "ns") }).to_string();
        // SAFETY: forwarded contract.
        unsafe { run_commands(engine, vec![SocketCommand::Namespace { ns, gated }]) }
    }
}

/// Answers a query once every command given before it is applied, blocking the
/// calling thread until then. The query in its JSON form:
/// `{"fetch_sockets":{"to":{...}}}` answers `[{"id","rooms":[..],"local":bool}]`
/// (the connections of the target, on every node: `fetchSockets`);
/// `{"emit_with_ack":{"to":{...},"event":"..","args":[..],"bin":n,"timeout_ms":n}}`
/// emits and answers, once every connection answered or the timeout passed,
/// `[{"id","args":[..]|null,"error":null|"timeout"|"socket_closed"|"decode"}]`
/// (`emitWithAck`). `to` as for `palaver_engine_run`; `attachments` are the
/// binary arguments.
///
/// On success `*out_json` receives the answer as a NUL-terminated JSON text
/// (`*out_len`, if not NULL, its length); free it with `palaver_string_free`.
///
/// Threads: any thread, the event callback included: the answer does not need
/// the callback thread, so there is no deadlock, but while the callback waits no
/// other event is delivered (up to `timeout_ms` for an emit_with_ack). Hosts that
/// must keep events flowing ask from a thread of their own.
///
/// `PALAVER_INVALID_ARG` for a malformed query, `PALAVER_NOT_RUNNING` when the
/// engine is not running or stops before answering, `PALAVER_DELIVERY_FAILED`
/// when the cluster backend fails.
///
/// # Safety
/// `engine` was made by this library; `query_json` is valid for `query_json_len`
/// bytes; `attachments` as for `palaver_engine_run`; `out_json` is valid for
/// writing; `out_len` is NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_query(
    engine: *const palaver_engine,
    query_json: *const c_char,
    query_json_len: usize,
    attachments: *const palaver_bytes,
    attachments_count: usize,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> palaver_result {
    boundary! {
        let query = (|| {
            if query_json.is_null() {
                return Err(fail(palaver_result::PALAVER_INVALID_ARG, "query_json is NULL"));
            }
            // SAFETY: forwarded contract.
            let json = unsafe { text_arg(query_json, query_json_len, "query_json") }?;
            // SAFETY: forwarded contract.
            let attachments = unsafe { attachments_arg(attachments, attachments_count) }?;
            SocketQuery::from_json(json, attachments).map_err(|e| fail_with(e.code(), e))
        })();
        // SAFETY: forwarded contract.
        unsafe { answer_query(engine, query, out_json, out_len) }
    }
}

/// The connections of a target on every node (`io.in(rooms).fetchSockets()`;
/// NULL `to`: every connection of "/") as `palaver_engine_query` answers
/// `fetch_sockets`, with its rules (blocking, `palaver_string_free`).
///
/// # Safety
/// `engine` was made by this library; `to` is NULL or a `palaver_target` as
/// documented; `out_json` is valid for writing; `out_len` is NULL or valid for
/// writing.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_fetch_sockets(
    engine: *const palaver_engine,
    to: *const palaver_target,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let query = unsafe { target_arg(to) }.map(|to| SocketQuery::FetchSockets { to });
        // SAFETY: forwarded contract.
        unsafe { answer_query(engine, query, out_json, out_len) }
    }
}

/// Emits `event` to a target (NULL `to`: every connection of "/"; one connection:
/// its id as the only room) and collects every connection's answer within
/// `timeout_ms` (`io.timeout(ms).emitWithAck(event, ...args)`), as
/// `palaver_engine_query` answers `emit_with_ack`, with its rules (blocking,
/// `palaver_string_free`). Arguments as for `palaver_engine_emit_to_socket`.
///
/// # Safety
/// `engine` was made by this library; `to` is NULL or a `palaver_target` as
/// documented; `event` is NUL-terminated; `args_json` and `attachments` as for
/// `palaver_engine_emit_to_socket`; `out_json` is valid for writing; `out_len` is
/// NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn palaver_engine_emit_with_ack(
    engine: *const palaver_engine,
    to: *const palaver_target,
    event: *const c_char,
    args_json: *const c_char,
    args_json_len: usize,
    attachments: *const palaver_bytes,
    attachments_count: usize,
    timeout_ms: u32,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> palaver_result {
    boundary! {
        let query = (|| {
            // SAFETY: forwarded contract.
            let to = unsafe { target_arg(to) }?;
            // SAFETY: forwarded contract.
            let event = unsafe { str_arg(event, "event") }?;
            // SAFETY: forwarded contract.
            let args = unsafe { args_arg(args_json, args_json_len, attachments, attachments_count) }?;
            Ok(SocketQuery::EmitWithAck {
                to,
                event: event.into(),
                args,
                timeout_ms: u64::from(timeout_ms),
            })
        })();
        // SAFETY: forwarded contract.
        unsafe { answer_query(engine, query, out_json, out_len) }
    }
}

/// Frees a string this library returned (`palaver_engine_query`'s answer, ...).
/// NULL is ignored.
///
/// # Safety
/// `text` is NULL or a string returned by this library, not freed before and not
/// used afterwards.
#[no_mangle]
pub unsafe extern "C" fn palaver_string_free(text: *mut c_char) {
    boundary_void! {
        if !text.is_null() {
            // SAFETY: made by CString::into_raw in this library, freed once per contract.
            drop(unsafe { CString::from_raw(text) });
        }
    }
}
