//! Transfer, Conference and Wrap-up dialogs, each with a list filtered by typing.

use crate::api;
use crate::i18n_centre::CentreWords as _;
use crate::state::{Console, Dialog};
use leptos::prelude::*;
use shared::agent::RequestedState;
use shared::engine::TransferTarget;
use shared::ids::{AgentId, ReasonId};
use shared::protocol::AgentFrame;

fn matches(filter: &str, label: &str) -> bool {
    label.to_lowercase().contains(&filter.trim().to_lowercase())
}

/// Whichever dialog is open.
#[component]
pub fn Dialogs() -> impl IntoView {
    let c = expect_context::<Console>();
    move || match c.dialog.get() {
        Dialog::None => ().into_any(),
        Dialog::Transfer(id) => view! { <TransferDialog id=id.to_string()/> }.into_any(),
        Dialog::Conference(id) => view! { <ConferenceDialog id=id.to_string()/> }.into_any(),
        Dialog::WrapUp(id) => view! { <WrapUpDialog id=id.to_string()/> }.into_any(),
        Dialog::LeftMessages => view! { <LeftMessagesDialog/> }.into_any(),
        Dialog::Past(id) => view! { <PastDialog id=id.to_string()/> }.into_any(),
    }
}

/// Moves keyboard focus into a dialog when it opens.
fn focus_on_open(r: NodeRef<leptos::html::Input>) {
    Effect::new(move |_| {
        if let Some(el) = r.get() {
            let _ = el.focus();
        }
    });
}

fn close(c: Console) {
    c.dialog.set(Dialog::None);
}

/// Transfer to a queue or an agent.
#[component]
fn TransferDialog(
    /// The conversation to transfer.
    id: String,
) -> impl IntoView {
    let c = expect_context::<Console>();
    let filter = RwSignal::new(String::new());
    let choice = RwSignal::new(None::<TransferTarget>);
    let first = NodeRef::<leptos::html::Input>::new();
    focus_on_open(first);
    let conv = shared::ids::ConversationId::new(id).ok();
    let go = move |_| {
        if let (Some(conversation), Some(target)) = (conv.clone(), choice.get_untracked()) {
            api::send(
                c,
                AgentFrame::Transfer {
                    conversation,
                    target,
                },
            );
            close(c);
        }
    };
    view! {
        <div class="modal-bg" on:keydown=move |e: leptos::ev::KeyboardEvent| { if e.key() == "Escape" { close(c) } }>
            <div class="modal" role="dialog" aria-modal="true" aria-labelledby="tr-title" data-testid="transfer-dialog">
                <header><h2 id="tr-title">{move || c.t().transfer}</h2>
                    <button type="button" class="ghost" data-testid="refresh" on:click=move |_| api::send(c, AgentFrame::Targets)>{move || c.t().refresh}</button></header>
                <input type="search" node_ref=first placeholder=move || c.t().filter aria-label=move || c.t().filter data-testid="filter"
                    prop:value=move || filter.get() on:input=move |e| filter.set(event_target_value(&e))/>
                <h3>{move || c.t().queues}</h3>
                <ul class="picklist" aria-label=move || c.t().queues>
                    // Keyed by the count too: a refreshed count redraws its row.
                    <For each=move || { let v: Vec<_> = c.queues.get().into_iter().filter(|q| matches(&filter.get(), &q.name)).collect(); v } key=|q| (q.id.clone(), q.waiting) children=move |q| {
                        let target = TransferTarget::Queue(q.id.clone());
                        let t2 = target.clone();
                        view! { <li><button type="button" data-testid="target-queue" aria-pressed=move || if choice.get().as_ref() == Some(&t2) { "true" } else { "false" }
                            class:chosen={ let t3 = target.clone(); move || choice.get().as_ref() == Some(&t3) }
                            on:click=move |_| choice.set(Some(target.clone()))>{q.name.clone()}<small>{format!(" ({})", q.waiting)}</small></button></li> }
                    }/>
                </ul>
                <h3>{move || c.t().agents}</h3>
                <ul class="picklist" aria-label=move || c.t().agents>
                    <Show when=move || c.agents.with(|a| a.is_empty())><li class="empty">{move || c.t().none_available}</li></Show>
                    <For each=move || { let v: Vec<_> = c.agents.get().into_iter().filter(|a| matches(&filter.get(), &a.name)).collect(); v } key=|a| a.id.clone() children=move |a| {
                        let target = TransferTarget::Agent(a.id.clone());
                        let t2 = target.clone();
                        view! { <li><button type="button" data-testid="target-agent" aria-pressed=move || if choice.get().as_ref() == Some(&t2) { "true" } else { "false" }
                            class:chosen={ let t3 = target.clone(); move || choice.get().as_ref() == Some(&t3) }
                            on:click=move |_| choice.set(Some(target.clone()))>{a.name.clone()}</button></li> }
                    }/>
                </ul>
                <footer>
                    <button type="button" class="ghost" on:click=move |_| close(c)>{move || c.t().cancel}</button>
                    <button type="button" class="primary" data-testid="do-transfer" disabled=move || choice.get().is_none() on:click=go>{move || c.t().transfer}</button>
                </footer>
            </div>
        </div>
    }
}

/// Ask an available agent to join.
#[component]
fn ConferenceDialog(
    /// The conversation to conference.
    id: String,
) -> impl IntoView {
    let c = expect_context::<Console>();
    let filter = RwSignal::new(String::new());
    let choice = RwSignal::new(String::new());
    let first = NodeRef::<leptos::html::Input>::new();
    focus_on_open(first);
    let conv = shared::ids::ConversationId::new(id).ok();
    let go = move |_| {
        if let (Some(conversation), Ok(guest)) =
            (conv.clone(), AgentId::new(choice.get_untracked()))
        {
            api::send(
                c,
                AgentFrame::Conference {
                    conversation,
                    guest,
                },
            );
            close(c);
        }
    };
    view! {
        <div class="modal-bg" on:keydown=move |e: leptos::ev::KeyboardEvent| { if e.key() == "Escape" { close(c) } }>
            <div class="modal" role="dialog" aria-modal="true" aria-labelledby="cf-title" data-testid="conference-dialog">
                <header><h2 id="cf-title">{move || c.t().conference}</h2>
                    <button type="button" class="ghost" on:click=move |_| api::send(c, AgentFrame::Targets)>{move || c.t().refresh}</button></header>
                <input type="search" node_ref=first placeholder=move || c.t().filter aria-label=move || c.t().filter
                    prop:value=move || filter.get() on:input=move |e| filter.set(event_target_value(&e))/>
                <select size="6" data-testid="guest" aria-label=move || c.t().agents on:change=move |e| choice.set(event_target_value(&e))>
                    <For each=move || { let v: Vec<_> = c.agents.get().into_iter().filter(|a| matches(&filter.get(), &a.name)).collect(); v } key=|a| a.id.clone()
                        children=|a| view! { <option value=a.id.to_string()>{a.name}</option> }/>
                </select>
                <footer>
                    <button type="button" class="ghost" on:click=move |_| close(c)>{move || c.t().cancel}</button>
                    <button type="button" class="primary" data-testid="do-conference" disabled=move || choice.get().is_empty() on:click=go>{move || c.t().conference}</button>
                </footer>
            </div>
        </div>
    }
}

/// Reason and next state after a chat.
#[component]
fn WrapUpDialog(
    /// The conversation to wrap up.
    id: String,
) -> impl IntoView {
    let c = expect_context::<Console>();
    let filter = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let first = NodeRef::<leptos::html::Input>::new();
    focus_on_open(first);
    let next = RwSignal::new("available".to_string());
    let conv = shared::ids::ConversationId::new(id).ok();
    let label = move |r: &shared::protocol::ReasonInfo| {
        if c.lang.get() == crate::i18n::Lang::De && !r.label_de.is_empty() {
            r.label_de.clone()
        } else {
            r.label.clone()
        }
    };
    let go = move |_| {
        let next = match next.get_untracked().as_str() {
            "available" => RequestedState::Available,
            other => match ReasonId::new(other) {
                Ok(reason) => RequestedState::Idle { reason },
                Err(_) => return,
            },
        };
        if let (Some(conversation), Ok(reason)) =
            (conv.clone(), ReasonId::new(reason.get_untracked()))
        {
            api::send(
                c,
                AgentFrame::WrapUp {
                    conversation,
                    reason,
                    next,
                },
            );
        }
    };
    view! {
        <div class="modal-bg" on:keydown=move |e: leptos::ev::KeyboardEvent| { if e.key() == "Escape" { close(c) } }>
            <div class="modal" role="dialog" aria-modal="true" aria-labelledby="wu-title" data-testid="wrap-up-dialog">
                <header><h2 id="wu-title">{move || c.t().wrap_up}</h2></header>
                <label class="field"><span>{move || c.t().wrap_up_reason}</span>
                    <input type="search" node_ref=first placeholder=move || c.t().filter data-testid="reason-filter"
                        prop:value=move || filter.get() on:input=move |e| filter.set(event_target_value(&e))/></label>
                <ul class="picklist" aria-label=move || c.t().wrap_up_reason data-testid="reasons">
                    <For each=move || { let v: Vec<_> = c.wrap_up_reasons.get().into_iter().filter(|r| matches(&filter.get(), &label(r))).collect(); v } key=|r| r.id.clone()
                        children=move |r| {
                            let l = label(&r);
                            let id = r.id.to_string();
                            let (i2, i3) = (id.clone(), id.clone());
                            view! { <li><button type="button" data-testid=format!("reason-{id}")
                                aria-pressed=move || if reason.get() == i2 { "true" } else { "false" }
                                class:chosen=move || reason.get() == i3
                                on:click=move |_| reason.set(id.clone())><bdi>{l}</bdi></button></li> }
                        }/>
                </ul>
                <label class="field"><span>{move || c.t().next_state}</span>
                    <select data-testid="next-state" on:change=move |e| next.set(event_target_value(&e)) prop:value=move || next.get()>
                        <option value="available">{move || c.t().available}</option>
                        <For each=move || c.idle_reasons.get() key=|r| r.id.clone()
                            children=move |r| { let l = label(&r); view! { <option value=r.id.to_string()>{move || c.t().idle}" · "{l.clone()}</option> } }/>
                    </select></label>
                <footer>
                    <button type="button" class="ghost" on:click=move |_| close(c)>{move || c.t().cancel}</button>
                    <Show when=move || reason.get().is_empty()>
                        <span class="why" id="wu-why" data-testid="wrap-up-why">{move || c.t().pick_reason}</span>
                    </Show>
                    <button type="button" class="primary" data-testid="submit-wrap-up" aria-describedby="wu-why" disabled=move || reason.get().is_empty() on:click=go>{move || c.t().submit_wrap_up}</button>
                </footer>
            </div>
        </div>
    }
}

/// Messages visitors left while the queue was closed or nobody was signed in.
#[component]
fn LeftMessagesDialog() -> impl IntoView {
    let c = expect_context::<Console>();
    let close_ref = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |_| {
        if let Some(b) = close_ref.get() {
            let _ = b.focus();
        }
    });
    view! {
        <div class="modal-bg" on:keydown=move |e: leptos::ev::KeyboardEvent| { if e.key() == "Escape" { close(c) } }>
            <div class="modal wide" role="dialog" aria-modal="true" aria-labelledby="lm-title" data-testid="left-messages-dialog">
                <header><h2 id="lm-title">{move || c.t().left_messages}</h2></header>
                <Show when=move || c.left_messages.with(|m| m.is_empty())>
                    <p class="empty">{move || c.t().no_left_messages}</p>
                </Show>
                <ul class="left-list">
                    <For each=move || c.left_messages.get() key=|m| m.id.clone() children=|m| view! {
                        <li data-testid="left-message">
                            <div class="row"><b>{m.customer.name.clone()}</b>
                                <span>{m.customer.email.clone().unwrap_or_default()}</span>
                                <time>{crate::state::local_time(&m.created_at)}</time></div>
                            <p>{m.message.clone().unwrap_or_default()}</p>
                        </li>
                    }/>
                </ul>
                <footer><button type="button" class="primary" node_ref=close_ref on:click=move |_| close(c)>{move || c.t().close}</button></footer>
            </div>
        </div>
    }
}

/// The transcript of an earlier conversation of the customer, read-only.
#[component]
fn PastDialog(
    /// The earlier conversation.
    id: String,
) -> impl IntoView {
    let c = expect_context::<Console>();
    let close_ref = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |_| {
        if let Some(b) = close_ref.get() {
            let _ = b.focus();
        }
    });
    let messages = move || {
        c.past
            .get()
            .filter(|(p, _)| p.as_str() == id)
            .map(|(_, m)| m)
    };
    view! {
        <div class="modal-bg" on:keydown=move |e: leptos::ev::KeyboardEvent| { if e.key() == "Escape" { close(c) } }>
            <div class="modal wide" role="dialog" aria-modal="true" aria-labelledby="past-title" data-testid="past-dialog">
                <header><h2 id="past-title">{move || c.lang.get().c().past_transcript}</h2></header>
                <div class="thread past" role="log" tabindex="0" aria-label=move || c.t().messages_label>
                    <ol>
                        {move || match messages() {
                            None => view! { <li class="sys"><span>{c.lang.get().c().loading}</span></li> }.into_any(),
                            Some(m) => m.into_iter().map(|m| crate::pane::message_row(c, m, String::new(), None)).collect_view().into_any(),
                        }}
                    </ol>
                </div>
                <footer><button type="button" class="primary" node_ref=close_ref on:click=move |_| close(c)>{move || c.t().close}</button></footer>
            </div>
        </div>
    }
}
