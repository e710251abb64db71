//! The result enum every fallible call returns, the one table from core's
//! [`HostErrorCode`] to it, the per-thread last error text, and the panic boundary.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};

use palaver_core::HostErrorCode;

/// What a call did. `PALAVER_OK` is zero; every other value is a failure whose text
/// `palaver_last_error` returns on the same thread.
///
/// The type is `uint32_t` (the enum only names the values), so its size does not
/// depend on the compiler, and a value this header does not know yet (from a newer
/// library) is still a valid `palaver_result`: treat unknown values as failures.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum palaver_result {
    /// Success.
    PALAVER_OK = 0,
    /// A required pointer is NULL, a string is not UTF-8, or a value is out of range
    /// (an event or room name the engine refuses, for example).
    PALAVER_INVALID_ARG = 1,
    /// The configuration JSON is malformed or the settings cannot work together.
    PALAVER_INVALID_CONFIG = 2,
    /// The configured host and port could not be bound (port taken, no permission).
    PALAVER_BIND_FAILED = 3,
    /// Start failed for another reason (history file, runtime, threads, Redis).
    PALAVER_START_FAILED = 4,
    /// The engine is running; the call needs a stopped engine.
    PALAVER_ALREADY_STARTED = 5,
    /// The engine is not running (never started, stopping or stopped); the call
    /// needs a running engine.
    PALAVER_NOT_RUNNING = 6,
    /// The output buffer is too small; the needed size was written to `out_len`.
    PALAVER_BUFFER_TOO_SMALL = 7,
    /// The user has no connection.
    PALAVER_USER_OFFLINE = 8,
    /// No custom event waits for an answer with this id (answered, expired or gone).
    PALAVER_UNKNOWN_ACK = 9,
    /// The call is not allowed from inside the event callback (it would wait for
    /// the callback itself).
    PALAVER_IN_CALLBACK = 10,
    /// A socket could not be used.
    PALAVER_IO_ERROR = 11,
    /// The engine failed to deliver (cluster backend error).
    PALAVER_DELIVERY_FAILED = 12,
    /// The engine's command queue is full (`command_queue_bytes`): commands are
    /// given faster than they are applied. Nothing of the call was queued; try
    /// again later.
    PALAVER_BUSY = 13,
    /// A bug inside the library was caught before it could reach the host: a
    /// panic, or an unexpected internal fault the engine reported.
    PALAVER_PANIC = 99,
}

impl palaver_result {
    /// Every result, for looking a number up (`palaver_result_name`).
    const ALL: [palaver_result; 15] = [
        Self::PALAVER_OK,
        Self::PALAVER_INVALID_ARG,
        Self::PALAVER_INVALID_CONFIG,
        Self::PALAVER_BIND_FAILED,
        Self::PALAVER_START_FAILED,
        Self::PALAVER_ALREADY_STARTED,
        Self::PALAVER_NOT_RUNNING,
        Self::PALAVER_BUFFER_TOO_SMALL,
        Self::PALAVER_USER_OFFLINE,
        Self::PALAVER_UNKNOWN_ACK,
        Self::PALAVER_IN_CALLBACK,
        Self::PALAVER_IO_ERROR,
        Self::PALAVER_DELIVERY_FAILED,
        Self::PALAVER_BUSY,
        Self::PALAVER_PANIC,
    ];

    /// The result whose number is `value`, if any.
    fn from_u32(value: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|result| *result as u32 == value)
    }

    /// The result's C name.
    fn name(self) -> &'static CStr {
        match self {
            Self::PALAVER_OK => c"PALAVER_OK",
            Self::PALAVER_INVALID_ARG => c"PALAVER_INVALID_ARG",
            Self::PALAVER_INVALID_CONFIG => c"PALAVER_INVALID_CONFIG",
            Self::PALAVER_BIND_FAILED => c"PALAVER_BIND_FAILED",
            Self::PALAVER_START_FAILED => c"PALAVER_START_FAILED",
            Self::PALAVER_ALREADY_STARTED => c"PALAVER_ALREADY_STARTED",
            Self::PALAVER_NOT_RUNNING => c"PALAVER_NOT_RUNNING",
            Self::PALAVER_BUFFER_TOO_SMALL => c"PALAVER_BUFFER_TOO_SMALL",
            Self::PALAVER_USER_OFFLINE => c"PALAVER_USER_OFFLINE",
            Self::PALAVER_UNKNOWN_ACK => c"PALAVER_UNKNOWN_ACK",
            Self::PALAVER_IN_CALLBACK => c"PALAVER_IN_CALLBACK",
            Self::PALAVER_IO_ERROR => c"PALAVER_IO_ERROR",
            Self::PALAVER_DELIVERY_FAILED => c"PALAVER_DELIVERY_FAILED",
            Self::PALAVER_BUSY => c"PALAVER_BUSY",
            Self::PALAVER_PANIC => c"PALAVER_PANIC",
        }
    }
}

/// The one table from core's error codes to C results: every core error reaches C
/// through it (`fail_with(e.code(), e)`).
impl From<HostErrorCode> for palaver_result {
    fn from(code: HostErrorCode) -> Self {
        match code {
            HostErrorCode::InvalidArgument => Self::PALAVER_INVALID_ARG,
            HostErrorCode::InvalidConfig => Self::PALAVER_INVALID_CONFIG,
            HostErrorCode::BindFailed => Self::PALAVER_BIND_FAILED,
            HostErrorCode::StartFailed => Self::PALAVER_START_FAILED,
            HostErrorCode::NotRunning => Self::PALAVER_NOT_RUNNING,
            HostErrorCode::UserOffline => Self::PALAVER_USER_OFFLINE,
            HostErrorCode::UnknownAck => Self::PALAVER_UNKNOWN_ACK,
            HostErrorCode::InsideCallback => Self::PALAVER_IN_CALLBACK,
            HostErrorCode::Io => Self::PALAVER_IO_ERROR,
            HostErrorCode::DeliveryFailed => Self::PALAVER_DELIVERY_FAILED,
            HostErrorCode::Busy => Self::PALAVER_BUSY,
            // An unexpected fault inside the engine is a bug of the library, as a
            // panic is.
            HostErrorCode::Internal => Self::PALAVER_PANIC,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `message` as this thread's last error and returns `result`.
pub(crate) fn fail(result: palaver_result, message: impl Into<String>) -> palaver_result {
    let message = message.into();
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
    result
}

/// Records a core error: its code through the table above, its text as the last
/// error.
pub(crate) fn fail_with(code: HostErrorCode, error: impl std::fmt::Display) -> palaver_result {
    fail(code.into(), error.to_string())
}

/// Clears the last error (called at the start of every fallible call).
pub(crate) fn clear() {
    LAST_ERROR.with(|last| last.borrow_mut().clear());
}

/// Runs `f` without changing this thread's last error: for the `_free`s, which
/// report no result, so that their internal steps do not leave a failure text.
pub(crate) fn keeping_last_error<T>(f: impl FnOnce() -> T) -> T {
    let saved = LAST_ERROR.with(|last| last.borrow().clone());
    let result = f();
    LAST_ERROR.with(|last| *last.borrow_mut() = saved);
    result
}

/// Turns a caught panic into `PALAVER_PANIC`.
pub(crate) fn panicked(payload: Box<dyn std::any::Any + Send>) -> palaver_result {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    fail(
        palaver_result::PALAVER_PANIC,
        format!("internal error (panic): {what}"),
    )
}

/// Runs the body of an exported function, turning a panic into `PALAVER_PANIC`.
/// Used inside the function body so that cbindgen still sees a plain signature.
macro_rules! boundary {
    ($($body:tt)*) => {{
        $crate::error::clear();
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> $crate::error::palaver_result { $($body)* },
        )) {
            Ok(result) => result,
            Err(payload) => $crate::error::panicked(payload),
        }
    }};
}
pub(crate) use boundary;

/// Runs the body of an exported function without a result (the `_free`s),
/// swallowing a panic: nothing may unwind into C.
macro_rules! boundary_void {
    ($($body:tt)*) => {{
        let _ = ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* }));
    }};
}
pub(crate) use boundary_void;

/// Unwraps a `Result<T, palaver_result>` inside a boundary.
macro_rules! try_ffi {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(result) => return result,
        }
    };
}
pub(crate) use try_ffi;

/// A NUL-terminated UTF-8 argument; NULL or invalid UTF-8 is `PALAVER_INVALID_ARG`.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn str_arg<'a>(
    ptr: *const c_char,
    name: &str,
) -> Result<&'a str, palaver_result> {
    if ptr.is_null() {
        return Err(fail(
            palaver_result::PALAVER_INVALID_ARG,
            format!("{name} is NULL"),
        ));
    }
    // SAFETY: non-NULL and NUL-terminated per the function's contract.
    unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|_| {
        fail(
            palaver_result::PALAVER_INVALID_ARG,
            format!("{name} is not UTF-8"),
        )
    })
}

/// Like [`str_arg`], but NULL is `None`.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn optional_str_arg<'a>(
    ptr: *const c_char,
    name: &str,
) -> Result<Option<&'a str>, palaver_result> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { str_arg(ptr, name) }.map(Some)
    }
}

/// A byte buffer argument: `len` bytes at `ptr`. NULL is an empty buffer when
/// `len` is 0, and `PALAVER_INVALID_ARG` otherwise.
///
/// # Safety
/// `ptr` is NULL or valid for `len` bytes during the call.
pub(crate) unsafe fn bytes_arg<'a>(
    ptr: *const u8,
    len: usize,
    name: &str,
) -> Result<&'a [u8], palaver_result> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(fail(
            palaver_result::PALAVER_INVALID_ARG,
            format!("{name} is NULL but its length is {len}"),
        ));
    }
    // SAFETY: non-NULL and valid for `len` bytes per the function's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A UTF-8 text given as a buffer and its length (no NUL needed; one inside is
/// part of the text), as [`bytes_arg`]; not UTF-8 is `PALAVER_INVALID_ARG`.
///
/// # Safety
/// As [`bytes_arg`].
pub(crate) unsafe fn text_arg<'a>(
    ptr: *const c_char,
    len: usize,
    name: &str,
) -> Result<&'a str, palaver_result> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { bytes_arg(ptr.cast(), len, name) }?;
    std::str::from_utf8(bytes).map_err(|_| {
        fail(
            palaver_result::PALAVER_INVALID_ARG,
            format!("{name} is not UTF-8"),
        )
    })
}

/// Parses a JSON argument; NULL means JSON `null`.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn json_arg(
    ptr: *const c_char,
    name: &str,
) -> Result<serde_json::Value, palaver_result> {
    // SAFETY: forwarded contract.
    let Some(text) = (unsafe { optional_str_arg(ptr, name) })? else {
        return Ok(serde_json::Value::Null);
    };
    parse_json(text, name)
}

/// Parses a required JSON argument; NULL is `PALAVER_INVALID_ARG`.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn required_json_arg(
    ptr: *const c_char,
    name: &str,
) -> Result<serde_json::Value, palaver_result> {
    // SAFETY: forwarded contract.
    parse_json(unsafe { str_arg(ptr, name) }?, name)
}

fn parse_json(text: &str, name: &str) -> Result<serde_json::Value, palaver_result> {
    serde_json::from_str(text).map_err(|e| {
        fail(
            palaver_result::PALAVER_INVALID_ARG,
            format!("{name} is not JSON: {e}"),
        )
    })
}

/// Writes `text` and a NUL into the caller's buffer. When `len` is too small nothing
/// is written to `buf` and `PALAVER_BUFFER_TOO_SMALL` is returned (without setting
/// the last error); `*out_len` always receives the size needed, NUL included.
///
/// # Safety
/// `buf` is NULL (with `len` 0) or valid for `len` bytes; `out_len` is NULL or valid.
pub(crate) unsafe fn write_text(
    text: &str,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> palaver_result {
    let needed = text.len() + 1;
    if !out_len.is_null() {
        // SAFETY: valid per contract.
        unsafe { *out_len = needed };
    }
    if buf.is_null() || len < needed {
        // No `fail` here: `palaver_last_error` must not overwrite the text it reports.
        return palaver_result::PALAVER_BUFFER_TOO_SMALL;
    }
    // SAFETY: `buf` holds at least `needed` bytes per the check above.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
    }
    palaver_result::PALAVER_OK
}

/// The name of a result ("PALAVER_OK", "PALAVER_BIND_FAILED", ...), a static
/// NUL-terminated string; "(not a palaver_result)" for any other number. Any
/// `uint32_t` is safe to pass.
#[no_mangle]
pub extern "C" fn palaver_result_name(result: u32) -> *const c_char {
    palaver_result::from_u32(result)
        .map_or(c"(not a palaver_result)", palaver_result::name)
        .as_ptr()
}

/// Writes this thread's last error text (empty after a success) into `buf` as a
/// NUL-terminated string. `*out_len` (if not NULL) receives the size needed, NUL
/// included. Returns `PALAVER_BUFFER_TOO_SMALL` (writing nothing) when `len` is too
/// small; `buf` may be NULL with `len` 0 to ask for the size.
///
/// # Safety
/// `buf` is NULL or valid for `len` bytes; `out_len` is NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn palaver_last_error(
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> palaver_result {
    match std::panic::catch_unwind(|| LAST_ERROR.with(|last| last.borrow().clone())) {
        // SAFETY: forwarded contract.
        Ok(text) => unsafe { write_text(&text, buf, len, out_len) },
        Err(_) => palaver_result::PALAVER_PANIC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_has_its_own_number_and_name() {
        for (i, a) in palaver_result::ALL.iter().enumerate() {
            assert_eq!(palaver_result::from_u32(*a as u32), Some(*a));
            for b in &palaver_result::ALL[i + 1..] {
                assert_ne!(*a as u32, *b as u32);
            }
            // SAFETY: a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(palaver_result_name(*a as u32)) };
            assert_eq!(name.to_str().unwrap(), format!("{a:?}"));
        }
        assert_eq!(palaver_result::from_u32(14), None);
        assert_eq!(palaver_result::from_u32(u32::MAX), None);
    }
}
