//! The sign-in form.

use crate::state::Console;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Company, agent id and password.
#[component]
pub fn SignIn() -> impl IntoView {
    let c = expect_context::<Console>();
    let tenant = RwSignal::new("demo".to_string());
    let agent = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        busy.set(true);
        c.error.set(None);
        spawn_local(async move {
            if let Err(m) = crate::api::sign_in(
                c,
                tenant.get_untracked(),
                agent.get_untracked(),
                password.get_untracked(),
            )
            .await
            {
                c.error.set(Some(m));
            }
            busy.set(false);
        });
    };
    view! {
        <div class="signin-wrap" lang=move || c.lang.get().code()>
            <form class="signin" on:submit=submit data-testid="signin">
                <div class="logo"><span class="mark" aria-hidden="true"></span>"Switchboard"</div>
                <h1>{move || c.t().title}</h1>
                <Show when=move || c.error.get().is_some()>
                    <p class="form-error" role="alert" data-testid="error">{move || c.error.get().unwrap_or_default()}</p>
                </Show>
                <label><span>{move || c.t().tenant}</span>
                    <input type="text" autocomplete="organization" data-testid="tenant" prop:value=move || tenant.get() on:input=move |e| tenant.set(event_target_value(&e))/></label>
                <label><span>{move || c.t().agent}</span>
                    <input type="text" autocomplete="username" required data-testid="agent" prop:value=move || agent.get() on:input=move |e| agent.set(event_target_value(&e))/></label>
                <label><span>{move || c.t().password}</span>
                    <input type="password" autocomplete="current-password" required data-testid="password" prop:value=move || password.get() on:input=move |e| password.set(event_target_value(&e))/></label>
                <button type="submit" class="primary" disabled=move || busy.get() data-testid="sign-in">{move || c.t().sign_in}</button>
                <button type="button" class="link" on:click=move |_| c.lang.update(|l| *l = l.other())>{move || c.t().language}</button>
            </form>
        </div>
    }
}
