//! Files: uploads with progress, and files the service answered with as blob URLs.
//!
//! Rules:
//! - [`upload`] POSTs a file as the raw body with progress, and reports the outcome
//!   once: `Ok(())` on `201`, otherwise the service's error message (or the status).
//! - [`save_as`] saves a blob URL as a named file.
//! - [`blob_url`] turns a file the service answered with into an object URL for an
//!   `<img>` or a download link; the caller sends the credentials.
//! - No rule of the product is decided here: the service checks size, type and name.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Uploads `file` to `url` with `headers`; `progress` gets 0–100, `done` the outcome.
pub fn upload(
    url: &str,
    headers: &[(&str, String)],
    file: &web_sys::File,
    mut progress: impl FnMut(u32) + 'static,
    done: impl FnOnce(Result<(), String>) + 'static,
) {
    let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
        done(Err("this browser cannot upload files".into()));
        return;
    };
    if xhr.open("POST", url).is_err() {
        done(Err("the upload could not start".into()));
        return;
    }
    for (k, v) in headers {
        let _ = xhr.set_request_header(k, v);
    }
    let on_progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
            if e.length_computable() && e.total() > 0.0 {
                progress(((e.loaded() / e.total() * 100.0).round() as u32).min(100));
            }
        });
    if let Ok(up) = xhr.upload() {
        up.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    }
    let x2 = xhr.clone();
    let mut done = Some(done);
    let on_done = Closure::<dyn FnMut()>::new(move || {
        let Some(done) = done.take() else { return };
        let status = x2.status().unwrap_or(0);
        if status == 201 {
            done(Ok(()));
            return;
        }
        let text = x2.response_text().ok().flatten().unwrap_or_default();
        done(Err(crate::error_text(status, &text)));
    });
    xhr.set_onloadend(Some(on_done.as_ref().unchecked_ref()));
    let _ = xhr.send_with_opt_blob(Some(file));
    // The handlers live as long as the page: one small pair per upload.
    on_progress.forget();
    on_done.forget();
}

/// Saves `href` (a blob URL) as a file called `name`, through a link clicked in
/// script (an element made as `<a>` is always an anchor: no type check at run time).
pub fn save_as(href: &str, name: &str) {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if let Ok(e) = doc.create_element("a") {
        let link: web_sys::HtmlAnchorElement = e.unchecked_into();
        link.set_href(href);
        link.set_download(name);
        link.click();
    }
}

/// An object URL of a successful answer's bytes, typed as the answer says.
pub async fn blob_url(resp: web_sys::Response) -> Option<String> {
    if !resp.ok() {
        return None;
    }
    let blob = wasm_bindgen_futures::JsFuture::from(resp.blob().ok()?)
        .await
        .ok()?
        .dyn_into::<web_sys::Blob>()
        .ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}
