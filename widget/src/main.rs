//! Switchboard visitor widget: a Leptos CSR app shown in an iframe by `widget.js`.
//!
//! Rules: it renders what the edge says and sends intents; every rule (message
//! length, reserved characters, queue, routing) is decided by the edge with
//! `shared`. All user text is rendered as plain text.

mod api;
mod chat;
mod i18n;
mod prechat;
mod state;

fn main() {
    // The embedding page changed (a single-page app, or a hash link): tell the agents.
    if let Some(w) = web_sys::window() {
        let on_page = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(api::report_page);
        let _ = w.add_event_listener_with_callback(
            "switchboard-page",
            wasm_bindgen::JsCast::unchecked_ref(on_page.as_ref()),
        );
        on_page.forget();
    }
    leptos::mount::mount_to_body(app::App);
}

mod app {
    use crate::i18n::Words as _;
    use crate::state::{Conn, Phase, Widget};
    use crate::{chat::ChatView, prechat::PreChat};
    use leptos::prelude::*;
    use wasm_bindgen::JsCast;

    /// The whole widget.
    #[component]
    pub fn App() -> impl IntoView {
        let w = Widget::new();
        provide_context(w);
        crate::api::boot(w);
        let t = w.lang.t();
        web::lang::set_document_lang(w.lang.code());
        // Escape closes the panel (the loader gives focus back to the launcher).
        let _esc = window_event_listener(leptos::ev::keydown, |e| {
            if e.key() == "Escape" {
                crate::api::close_panel();
            }
        });
        // The loader focuses the frame on open: put the cursor in the first field, now
        // or once the form is drawn.
        let focus_first = || {
            let first = document()
                .query_selector("[data-testid=name], [data-testid=composer]")
                .ok()
                .flatten()
                // An `<input>` or a `<textarea>` of this app: an HTML element.
                .map(|e| e.unchecked_into::<web_sys::HtmlElement>());
            if let Some(el) = first {
                let _ = el.focus();
            }
        };
        let _focus = window_event_listener(leptos::ev::focus, move |_| focus_first());
        // Each screen, once drawn: its first field gets the focus if the frame has it (a
        // microtask runs once the screen is in the document; once more after the next
        // frame in case the form was drawn later).
        let focus_screen = move || {
            queue_microtask(move || {
                if document().has_focus().unwrap_or(false) {
                    focus_first();
                    request_animation_frame(focus_first);
                }
            })
        };
        // Before a chat the dot says whether anyone answers now: grey while nobody is
        // signed in or the queue is closed (the leave-a-message form).
        let dot = move || match w.conn() {
            Conn::Online if w.phase.get() == Phase::LeaveMessage => "dot off",
            Conn::Online => "dot",
            Conn::Connecting | Conn::Reconnecting => "dot away",
            Conn::Ended => "dot off",
        };
        view! {
            <div class="widget" lang=w.lang.code()>
                <header class="head">
                    <div class="brand">
                        <span class=dot aria-hidden="true" data-testid="status-dot"></span>
                        <div>
                            <h1>{move || w.site_info.with(|i| i.as_ref().map(|i| i.name.clone()))}</h1>
                            <p class="sub" data-testid="status-line">{move || w.status_text()}</p>
                            {move || w.reply_mins().filter(|_| w.phase.get() == Phase::PreChat).map(|m| view! {
                                <p class="sub reply" data-testid="reply-time">{w.lang.reply_time(m)}</p>
                            })}
                        </div>
                    </div>
                    <div class="team" aria-hidden="true" data-testid="team">
                        {move || w.site_info.with(|i| i.as_ref().map(|i| i.team.clone())).unwrap_or_default().into_iter().map(|f| view! {
                            // One view for both kinds of face: the picture, when there is
                            // one, covers the initials (one view type keeps the wasm small).
                            <span class="avatar">{f.initials}{f.picture.map(|src| view! { <img src=src alt="" width="30" height="30"/> })}</span>
                        }).collect_view()}
                    </div>
                    <button type="button" class="close" aria-label=t.minimize on:click=move |_| crate::api::close_panel()>
                        <svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path d="M6 12h12" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/></svg>
                    </button>
                </header>
                {move || w.error.get().map(|e| view! {
                    <div class="error" role="alert" data-testid="error">{e}</div>
                })}
                {move || {
                    let phase = w.phase.get();
                    focus_screen();
                    match phase {
                        Phase::Loading => view! { <div class="loading" aria-busy="true">{t.loading}</div> }.into_any(),
                        Phase::PreChat | Phase::LeaveMessage => view! { <PreChat/> }.into_any(),
                        Phase::MessageLeft => view! { <div class="done" data-testid="message-left"><h2>{t.message_left_title}</h2><p>{t.message_left_body}</p></div> }.into_any(),
                        Phase::Chatting => view! { <ChatView/> }.into_any(),
                    }
                }}
                <footer class="foot">{t.powered}</footer>
            </div>
        }
    }
}
