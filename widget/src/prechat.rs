//! The pre-chat form (name, optional email, first message), or the
//! leave-a-message form when the queue is closed or nobody is signed in.

use crate::i18n::Words as _;
use crate::state::{Phase, Widget};
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::engine::Availability;

/// The form shown before a chat starts.
#[component]
pub fn PreChat() -> impl IntoView {
    let w = expect_context::<Widget>();
    let t = w.lang.t();
    // The widget's own: filled from the page's `identify`, kept for a next chat.
    let (name, email) = (w.form_name, w.form_email);
    let text = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let leave = move || w.phase.get() == Phase::LeaveMessage;
    let intro = move || match w.availability() {
        Some(Availability::Closed { .. }) => t.closed_intro,
        Some(Availability::NoAgents { .. }) => t.no_agents_intro,
        _ => t.intro,
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if name.get().trim().is_empty() {
            w.error.set(Some(t.name_required.into()));
            return;
        }
        if text.get().trim().is_empty() {
            w.error.set(Some(t.text_required.into()));
            return;
        }
        busy.set(true);
        w.error.set(None);
        let (n, e, m) = (name.get(), email.get(), text.get());
        spawn_local(async move {
            let r = if leave() {
                crate::api::leave_message(w, n, e, m).await
            } else {
                crate::api::start(w, n, e, m).await
            };
            if let Err(msg) = r {
                w.error.set(Some(msg));
            }
            busy.set(false);
        });
    };
    view! {
        <form class="prechat" on:submit=submit data-testid="prechat">
            <p class="intro">{intro}</p>
            <label>
                <span>{t.name}</span>
                <input type="text" name="name" autocomplete="name" required maxlength="80" data-testid="name"
                    prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/>
            </label>
            <label>
                <span>{t.email}" "<em>{t.optional}</em></span>
                <input type="email" name="email" autocomplete="email" maxlength="200" data-testid="email"
                    prop:value=move || email.get() on:input=move |e| email.set(event_target_value(&e))/>
            </label>
            <label>
                <span>{t.message}</span>
                <textarea name="message" rows="4" required maxlength="1000" data-testid="first-message"
                    prop:value=move || text.get() on:input=move |e| text.set(event_target_value(&e))></textarea>
            </label>
            <button type="submit" class="primary" disabled=move || busy.get() data-testid="start">
                {move || if leave() { t.leave } else { t.start }}
            </button>
        </form>
    }
}
