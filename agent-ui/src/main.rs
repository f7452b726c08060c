//! Switchboard agent console: a Leptos CSR app.
//!
//! Rules: the console renders what the edge says and sends intents; the edge
//! decides every state change with `shared`. Everything any party writes is
//! rendered as plain text.

mod admin;
mod api;
mod chats;
mod context;
mod dialogs;
mod i18n;
mod i18n_centre;
mod offer;
mod pane;
mod signin;
mod state;
mod supervisor;
mod topbar;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}

mod app {
    use crate::state::{Console, Screen};
    use leptos::prelude::*;

    /// Sign-in, or the console once signed in.
    #[component]
    pub fn App() -> impl IntoView {
        let c = Console::new();
        provide_context(c);
        crate::api::resume(c);
        // `<html lang>` follows the console's language.
        Effect::new(move |_| {
            web::lang::set_document_lang(c.lang.get().code());
        });
        // The title flashes while an offer waits (when offer alerts are on).
        Effect::new(move |_| {
            let base = c.t().title;
            let flash = c.alert_offers.get()
                && c.offer.with(|o| o.is_some())
                && ((c.now_ms.get() / 1000.0) as u64).is_multiple_of(2);
            let title = if flash {
                format!("● {} — {base}", c.t().offer_title)
            } else {
                base.to_string()
            };
            document().set_title(&title);
        });
        view! {
            <Show when=move || c.session.get().is_some() fallback=|| view! { <crate::signin::SignIn/> }>
                <div class="console">
                    <crate::topbar::TopBar/>
                    <Show when=move || c.error.get().is_some()>
                        <div class="toast" role="alert" data-testid="error">
                            <span>{move || c.error.get().unwrap_or_default()}</span>
                            <button type="button" aria-label="×" on:click=move |_| c.error.set(None)>"×"</button>
                        </div>
                    </Show>
                    <main class="screens">
                        // The chats stay mounted (drafts, sockets) while another screen shows.
                        <div class="layout" hidden=move || c.screen.get() != Screen::Chats>
                            <crate::chats::ChatList/>
                            <crate::pane::Pane/>
                        </div>
                        {move || match c.screen.get() {
                            Screen::Chats => ().into_any(),
                            Screen::Supervisor => view! { <crate::supervisor::SupervisorScreen/> }.into_any(),
                            Screen::Admin => view! { <crate::admin::AdminScreen/> }.into_any(),
                        }}
                    </main>
                    <crate::offer::OfferPopover/>
                    <crate::dialogs::Dialogs/>
                </div>
            </Show>
        }
    }
}
