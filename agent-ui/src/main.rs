//! Switchboard agent console: a Leptos CSR app.
//!
//! Rules: the console renders what the edge says and sends intents; the edge
//! decides every state change with `shared`. Everything any party writes is
//! rendered as plain text.

mod api;
mod chats;
mod dialogs;
mod i18n;
mod offer;
mod pane;
mod signin;
mod state;
mod topbar;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}

mod app {
    use crate::state::Console;
    use leptos::prelude::*;

    /// Sign-in, or the console once signed in.
    #[component]
    pub fn App() -> impl IntoView {
        let c = Console::new();
        provide_context(c);
        crate::api::resume(c);
        // `<html lang>` follows the console's language.
        Effect::new(move |_| {
            let code = c.lang.get().code();
            if let Some(root) = document().document_element() {
                let _ = root.set_attribute("lang", code);
            }
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
                    <main class="layout">
                        <crate::chats::ChatList/>
                        <crate::pane::Pane/>
                    </main>
                    <crate::offer::OfferPopover/>
                    <crate::dialogs::Dialogs/>
                </div>
            </Show>
        }
    }
}
