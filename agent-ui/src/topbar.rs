//! The top bar: who is signed in, the state control, the RONA banner, language, sign-out.

use crate::api;
use crate::i18n::Words as _;
use crate::i18n_centre::CentreWords as _;
use crate::state::{Console, Screen};
use leptos::prelude::*;
use shared::agent::{AgentState, RequestedState};
use shared::protocol::AgentFrame;

/// State control and RONA banner.
#[component]
pub fn TopBar() -> impl IntoView {
    let c = expect_context::<Console>();
    let choose = move |e: leptos::ev::Event| {
        let v = event_target_value(&e);
        let state = if v == "available" {
            RequestedState::Available
        } else {
            match shared::ids::ReasonId::new(v) {
                Ok(reason) => RequestedState::Idle { reason },
                Err(_) => return,
            }
        };
        api::send(c, AgentFrame::SetState { state });
    };
    let current = move || match c.state.get() {
        AgentState::Available => "available".to_string(),
        AgentState::Idle { reason: Some(r) } => r.to_string(),
        AgentState::Idle { reason: None } => "idle".into(),
        AgentState::Rona => "rona".into(),
        AgentState::SignedOut => "signed_out".into(),
    };
    let class = move || match c.state.get() {
        AgentState::Available => "state available",
        AgentState::Rona => "state rona",
        _ => "state idle",
    };
    view! {
        <header class="topbar" lang=move || c.lang.get().code()>
            <div class="logo"><span class="mark" aria-hidden="true"></span>"Switchboard"</div>
            <div class="me">
                <span class="avatar" aria-hidden="true">{move || c.session.get().map(|s| s.name.chars().next().unwrap_or('?').to_string())}</span>
                <span data-testid="me">{move || c.session.get().map(|s| s.name).unwrap_or_default()}</span>
            </div>
            <label class=class>
                <span class="sr">{move || c.t().state_label}</span>
                <span class="pill" aria-hidden="true" title=move || c.lang.get().state(&c.state.get())></span>
                <select data-testid="state" prop:value=current on:change=choose>
                    <option value="available">{move || c.t().available}</option>
                    <Show when=move || c.state.get() == AgentState::Rona>
                        <option value="rona" disabled>{move || c.t().rona}</option>
                    </Show>
                    <Show when=move || c.state.get() == (AgentState::Idle { reason: None })>
                        <option value="idle" disabled>{move || c.t().idle_signed_in}</option>
                    </Show>
                    <For each=move || c.idle_reasons.get() key=|r| r.id.clone() children=move |r| {
                        let label = move || format!("{} · {}", c.t().idle, if c.lang.get() == crate::i18n::Lang::De && !r.label_de.is_empty() { r.label_de.clone() } else { r.label.clone() });
                        view! { <option value=r.id.to_string()>{label}</option> }
                    }/>
                </select>
            </label>
            <Show when=move || c.role.get().supervises()>
                <nav class="tabs" aria-label=move || c.lang.get().c().nav_label>
                    <button type="button" data-testid="tab-chats" aria-current=move || (c.screen.get() == Screen::Chats).then_some("page")
                        on:click=move |_| c.screen.set(Screen::Chats)>{move || c.lang.get().c().chats_tab}</button>
                    <button type="button" data-testid="tab-supervisor" aria-current=move || (c.screen.get() == Screen::Supervisor).then_some("page")
                        on:click=move |_| { c.screen.set(Screen::Supervisor); api::send(c, AgentFrame::Supervise); }>{move || c.lang.get().c().supervisor_tab}</button>
                    <Show when=move || c.role.get().administers()>
                        <button type="button" data-testid="tab-admin" aria-current=move || (c.screen.get() == Screen::Admin).then_some("page")
                            on:click=move |_| c.screen.set(Screen::Admin)>{move || c.lang.get().c().admin_tab}</button>
                    </Show>
                </nav>
            </Show>
            <span class="spacer"></span>
            <button type="button" class="ghost icon" data-testid="offer-alerts"
                aria-pressed=move || if c.alert_offers.get() { "true" } else { "false" }
                aria-label=move || c.lang.get().c().offer_alerts
                title=move || c.lang.get().c().offer_alerts
                on:click=move |_| {
                    let on = !c.alert_offers.get_untracked();
                    api::set_alerts(c, on);
                    if on { api::chime(); }
                }>
                <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">
                    <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/><path d="M13.7 21a2 2 0 0 1-3.4 0"/>
                    <Show when=move || !c.alert_offers.get()><path d="M3 3l18 18"/></Show>
                </svg>
            </button>
            <Show when=move || !c.connected.get()>
                <span class="offline" role="status">{move || c.t().reconnecting}</span>
            </Show>
            <button type="button" class="ghost" data-testid="left-messages"
                on:click=move |_| { api::send(c, AgentFrame::LeftMessages); c.dialog.set(crate::state::Dialog::LeftMessages); }>{move || c.t().left_messages}</button>
            <button type="button" class="ghost" on:click=move |_| c.lang.update(|l| *l = l.other())>{move || c.t().language}</button>
            <button type="button" class="ghost" data-testid="sign-out" on:click=move |_| api::send(c, AgentFrame::SignOut)>{move || c.t().sign_out}</button>
        </header>
        <Show when=move || c.state.get() == AgentState::Rona>
            <div class="rona-banner" role="alert" data-testid="rona-banner">
                <strong>"RONA"</strong>
                <span>{move || c.t().rona_banner}</span>
                <button type="button" class="primary" data-testid="back-available"
                    on:click=move |_| api::send(c, AgentFrame::SetState { state: RequestedState::Available })>{move || c.t().back_available}</button>
            </div>
        </Show>
    }
}
