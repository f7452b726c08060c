//! Browser code both apps (the widget and the agent console) need, in one place
//! instead of two copies. Not part of `shared`, which stays pure: this crate does
//! I/O and reads the clock, and decides no rule of the product.
//!
//! - [`socket`]: a WebSocket with its handlers, a heartbeat that finds a stalled
//!   socket, the reconnect back-off, and same-origin `ws://`/`wss://` addresses.
//! - [`store`]: `localStorage` / `sessionStorage`, as text or JSON.
//! - [`log`]: a conversation's messages, in order and once per sequence number, and
//!   the gap rule that tells a client to resume.
//! - [`lang`]: the browser's language and `<html lang>`.
//! - [`files`]: uploads with progress, and downloads as blob URLs.
//! - [`http`]: requests on the browser's `fetch`, with text bodies.
//! - [`json`]: JSON parsed by the browser, for `shared::mini`'s readers.

pub mod files;
pub mod http;
pub mod json;
pub mod lang;
pub mod log;
pub mod socket;
pub mod store;

pub use files::{blob_url, save_as, upload};

/// Resolves after `ms` milliseconds (the browser's `setTimeout`; a promise the
/// futures runtime already handles, rather than a timer crate).
pub async fn sleep(ms: u32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let ms = i32::try_from(ms).unwrap_or(i32::MAX);
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// What to tell the user of a failed HTTP answer: the service's message (its
/// `ErrorBody`), or the bare status when the body is not one.
pub fn error_text(status: u16, body: &str) -> String {
    shared::mini::error_message::<json::Value>(body).unwrap_or_else(|| format!("HTTP {status}"))
}
