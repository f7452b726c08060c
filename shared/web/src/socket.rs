//! A WebSocket with its handlers, a heartbeat and the reconnect back-off.
//!
//! Rules:
//! - A [`Socket`] owns its browser socket and handlers. Dropping it detaches the
//!   handlers first and then closes the socket, so a socket the app replaces or closes
//!   on purpose never reports a close (and never triggers a reconnect).
//! - [`Socket::send`] sends only on an open socket and says whether it did; the
//!   caller keeps what must not be lost (an outbox) until the service acknowledges it.
//! - Heartbeat ([`Socket::beat`]): while open, a ping is due every `interval`; when
//!   nothing at all (not even a pong) came for two intervals and 5 s more, the socket
//!   is stalled and the caller closes it, which reconnects.
//! - Back-off ([`Backoff`]): 1 s, 2 s, 4 s, 8 s, 10 s, 10 s, … between reconnects,
//!   back to the start once a socket opens.

use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// What the heartbeat asks of the caller now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// Nothing to do.
    Quiet,
    /// Send a ping.
    Ping,
    /// Nothing came back for too long: close the socket and reconnect.
    Stalled,
}

/// An open (or opening) WebSocket and its handlers.
pub struct Socket {
    ws: WebSocket,
    last_frame: Rc<Cell<f64>>,
    last_ping: Rc<Cell<f64>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_open: Closure<dyn FnMut()>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Opens a socket to `url`. `on_text` gets every text frame, `on_open` runs once
    /// it is open, `on_close` gets the close code and reason (only for a close the app
    /// did not ask for). `None` if the browser refuses the address.
    pub fn open(
        url: &str,
        on_text: impl FnMut(String) + 'static,
        on_open: impl FnMut() + 'static,
        on_close: impl FnMut(u16, String) + 'static,
    ) -> Option<Self> {
        Self::open_boxed(
            url,
            Box::new(on_text),
            Box::new(on_open),
            Box::new(on_close),
        )
    }

    fn open_boxed(
        url: &str,
        mut on_text: Box<dyn FnMut(String)>,
        mut on_open: Box<dyn FnMut()>,
        mut on_close: Box<dyn FnMut(u16, String)>,
    ) -> Option<Self> {
        let ws = WebSocket::new(url).ok()?;
        let last_frame = Rc::new(Cell::new(0.0));
        let last_ping = Rc::new(Cell::new(0.0));
        let seen = last_frame.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            seen.set(js_sys::Date::now());
            if let Some(text) = e.data().as_string() {
                on_text(text);
            }
        });
        let (seen, pinged) = (last_frame.clone(), last_ping.clone());
        let opened = Closure::<dyn FnMut()>::new(move || {
            let now = js_sys::Date::now();
            seen.set(now);
            pinged.set(now);
            on_open();
        });
        let closed = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            on_close(e.code(), e.reason());
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onopen(Some(opened.as_ref().unchecked_ref()));
        ws.set_onclose(Some(closed.as_ref().unchecked_ref()));
        Some(Self {
            ws,
            last_frame,
            last_ping,
            _on_message: on_message,
            _on_open: opened,
            _on_close: closed,
        })
    }

    /// Whether the socket is open.
    pub fn is_open(&self) -> bool {
        self.ws.ready_state() == WebSocket::OPEN
    }

    /// Whether the socket is open or still opening (not closing or closed).
    pub fn is_live(&self) -> bool {
        matches!(
            self.ws.ready_state(),
            WebSocket::OPEN | WebSocket::CONNECTING
        )
    }

    /// Sends `text` if the socket is open; whether it went out.
    pub fn send(&self, text: &str) -> bool {
        self.is_open() && self.ws.send_with_str(text).is_ok()
    }

    /// The heartbeat at `now` (ms since the epoch) with a ping every `interval_ms`.
    /// Records the ping when one is due.
    pub fn beat(&self, now: f64, interval_ms: f64) -> Beat {
        if !self.is_open() {
            return Beat::Quiet;
        }
        let beat = heartbeat(
            now,
            self.last_frame.get(),
            self.last_ping.get(),
            interval_ms,
        );
        if beat == Beat::Ping {
            self.last_ping.set(now);
        }
        beat
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onclose(None);
        self.ws.set_onmessage(None);
        self.ws.set_onopen(None);
        let _ = self.ws.close();
    }
}

/// The heartbeat rule: stalled after two missed intervals and 5 s more of silence,
/// otherwise a ping once an interval has passed since the last one.
pub fn heartbeat(now: f64, last_frame: f64, last_ping: f64, interval_ms: f64) -> Beat {
    if now - last_frame > 2.0 * interval_ms + 5_000.0 {
        Beat::Stalled
    } else if now - last_ping >= interval_ms {
        Beat::Ping
    } else {
        Beat::Quiet
    }
}

/// Delays between reconnects: doubling from 1 s, at most 10 s.
#[derive(Debug, Default)]
pub struct Backoff(Cell<u32>);

impl Backoff {
    /// No failure yet.
    pub const fn new() -> Self {
        Self(Cell::new(0))
    }

    /// Counts a failure; the delay before the next try, in ms.
    pub fn next_ms(&self) -> u32 {
        let n = self.0.get().saturating_add(1);
        self.0.set(n);
        (500 * 2u32.pow(n.min(5))).min(10_000)
    }

    /// A socket opened: start again from the shortest delay.
    pub fn reset(&self) {
        self.0.set(0);
    }
}

/// The same-origin WebSocket address of `path` (`wss://` on an `https:` page).
pub fn ws_url(path: &str) -> String {
    let loc = web_sys::window().map(|w| w.location());
    let host = loc.as_ref().and_then(|l| l.host().ok()).unwrap_or_default();
    let secure = loc
        .and_then(|l| l.protocol().ok())
        .is_some_and(|p| p == "https:");
    format!("{}://{host}{path}", if secure { "wss" } else { "ws" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_pings_each_interval_and_finds_a_stall() {
        assert_eq!(heartbeat(1_000.0, 0.0, 0.0, 20_000.0), Beat::Quiet);
        assert_eq!(heartbeat(20_000.0, 0.0, 0.0, 20_000.0), Beat::Ping);
        assert_eq!(
            heartbeat(30_000.0, 25_000.0, 20_000.0, 20_000.0),
            Beat::Quiet
        );
        assert_eq!(heartbeat(45_000.0, 0.0, 40_000.0, 20_000.0), Beat::Quiet);
        assert_eq!(heartbeat(45_001.0, 0.0, 40_000.0, 20_000.0), Beat::Stalled);
    }

    #[test]
    fn backoff_doubles_to_ten_seconds_and_resets() {
        let b = Backoff::new();
        let delays: Vec<u32> = (0..7).map(|_| b.next_ms()).collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
        b.reset();
        assert_eq!(b.next_ms(), 1_000);
    }
}
