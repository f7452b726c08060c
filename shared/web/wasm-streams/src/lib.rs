//! A stand-in for `wasm-streams` 0.5, patched in by the workspace manifest.
//!
//! Leptos always enables `server_fn/browser`, whose client turns streaming
//! server-function bodies into web streams with `wasm-streams`. That crate
//! exports four JavaScript classes (`IntoUnderlyingSource`, `…ByteSource`,
//! `…Sink`) with `#[wasm_bindgen]`. An export is a root for the linker, so
//! their code, the futures they drive and their vtables stay in every wasm
//! that links Leptos — about 4 KB gzipped of the visitor widget — although
//! neither Switchboard app has a server function.
//!
//! Rules:
//! - This crate offers exactly the items `server_fn` 0.8 names, with the same
//!   signatures, so Leptos compiles unchanged.
//! - Wrapping a raw stream and unwrapping it again work. Turning a Rust stream
//!   into a web stream, or the reverse, is refused with a panic that names this
//!   crate: an app that adds a streaming server function must remove the patch
//!   in the root `Cargo.toml`.
//! - `worker` uses `wasm-streams` 0.7, which the patch does not touch.

pub mod readable {
    //! The readable-stream wrapper `server_fn` names.

    use futures_util::stream::{Empty, Stream};
    use wasm_bindgen::JsValue;

    /// What a streaming call would need and this stand-in refuses.
    const REFUSED: &str = "streaming server functions are not built into Switchboard's apps \
         (wasm-streams is a stand-in: see shared/web/wasm-streams)";

    /// A web `ReadableStream`, held as it came.
    pub struct ReadableStream(web_sys::ReadableStream);

    impl ReadableStream {
        /// Refused: would bridge a Rust stream into a web stream.
        pub fn from_stream<St>(_stream: St) -> Self
        where
            St: Stream<Item = Result<JsValue, JsValue>> + 'static,
        {
            panic!("{REFUSED}")
        }

        /// Wraps a web stream.
        pub fn from_raw(raw: web_sys::ReadableStream) -> Self {
            Self(raw)
        }

        /// The web stream this wraps.
        pub fn into_raw(self) -> web_sys::ReadableStream {
            self.0
        }

        /// Refused: would read a web stream as a Rust stream.
        pub fn into_stream(self) -> Empty<Result<JsValue, JsValue>> {
            panic!("{REFUSED}")
        }
    }
}

pub use readable::ReadableStream;
