//! HTTP requests on the browser's `fetch`, for the widget, whose every byte a visitor
//! downloads (a client library costs it about 2 KB gzip for what these few lines do).
//!
//! Rules:
//! - [`fetch`] resolves with any answer the service gave, whatever its status; it
//!   fails only when no answer came (network down, request refused by the browser),
//!   with the browser's reason.
//! - Bodies are text (JSON) or absent; files go through [`crate::upload`].

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// An answer of the service.
pub struct Response(web_sys::Response);

/// The text of a failed browser call.
fn reason(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "the request failed".into())
}

impl Response {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        self.0.ok()
    }

    /// The body as text.
    pub async fn text(self) -> Result<String, String> {
        let promise = self.0.text().map_err(reason)?;
        let text = JsFuture::from(promise).await.map_err(reason)?;
        Ok(text.as_string().unwrap_or_default())
    }

    /// The browser's answer, for [`crate::blob_url`].
    pub fn into_raw(self) -> web_sys::Response {
        self.0
    }
}

/// Sends `method url` with `headers` and an optional text `body`.
pub async fn fetch(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Response, String> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let h = web_sys::Headers::new().map_err(reason)?;
    for (k, v) in headers {
        h.set(k, v).map_err(reason)?;
    }
    init.set_headers(&h);
    if let Some(b) = body {
        init.set_body(&JsValue::from_str(b));
    }
    let window = web_sys::window().ok_or("no window")?;
    let answer = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(reason)?;
    answer
        .dyn_into::<web_sys::Response>()
        .map(Response)
        .map_err(|_| "fetch did not answer with a response".into())
}
