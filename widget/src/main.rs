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
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}

mod app {
    use crate::state::{Phase, Widget};
    use crate::{chat::ChatView, prechat::PreChat};
    use leptos::prelude::*;

    /// The whole widget.
    #[component]
    pub fn App() -> impl IntoView {
        let w = Widget::new();
        provide_context(w);
        crate::api::boot(w);
        let t = w.lang.t();
        view! {
            <div class="widget" lang=w.lang.code()>
                <header class="head">
                    <div class="brand">
                        <span class="dot" aria-hidden="true"></span>
                        <div>
                            <h1>{move || w.site_name.get()}</h1>
                            <p class="sub" data-testid="status-line">{move || w.status_text()}</p>
                        </div>
                    </div>
                    <button type="button" class="close" aria-label=t.minimize on:click=move |_| crate::api::close_panel()>
                        <svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path d="M6 12h12" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/></svg>
                    </button>
                </header>
                <Show when=move || w.error.get().is_some()>
                    <div class="error" role="alert" data-testid="error">{move || w.error.get().unwrap_or_default()}</div>
                </Show>
                {move || match w.phase.get() {
                    Phase::Loading => view! { <div class="loading" aria-busy="true">{t.loading}</div> }.into_any(),
                    Phase::PreChat | Phase::LeaveMessage => view! { <PreChat/> }.into_any(),
                    Phase::MessageLeft => view! { <div class="done" data-testid="message-left"><h2>{t.message_left_title}</h2><p>{t.message_left_body}</p></div> }.into_any(),
                    Phase::Chatting => view! { <ChatView/> }.into_any(),
                }}
                <footer class="foot">{t.powered}</footer>
            </div>
        }
    }
}
