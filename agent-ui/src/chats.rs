//! The list of the agent's concurrent chats with unread counts.

use crate::i18n::Words as _;
use crate::state::Console;
use leptos::prelude::*;

/// Chats on the left.
#[component]
pub fn ChatList() -> impl IntoView {
    let c = expect_context::<Console>();
    view! {
        <nav class="chatlist" aria-label=move || c.t().chats>
            <h2>{move || c.t().chats}<span class="count">{move || format!("{}/{}", c.chats.with(|v| v.iter().filter(|e| !e.wrap_up).count()), c.capacity.get())}</span></h2>
            <Show when=move || c.chats.with(|v| v.is_empty())>
                <p class="empty">{move || c.t().no_chats}</p>
            </Show>
            <ul>
                <For each=move || c.chats.get() key=|e| (e.summary.conversation.clone(), e.unread, e.wrap_up, e.messages.len(), format!("{:?}", e.summary.status)) children=move |e| {
                    let id = e.summary.conversation.clone();
                    let id2 = id.clone();
                    let selected = Memo::new(move |_| c.selected.get().as_ref() == Some(&id2));
                    let last = e.messages.iter().rev().find(|m| m.note.is_none()).map(|m| m.text.clone()).unwrap_or_default();
                    let status = e.summary.status.clone();
                    view! {
                        <li>
                            <button type="button" class="chatitem" class:selected=selected aria-current=move || if selected.get() { "true" } else { "false" }
                                data-testid="chat-item"
                                on:click=move |_| { c.selected.set(Some(id.clone())); c.update_chat(&id, |e| e.unread = 0); }>
                                <span class="avatar" aria-hidden="true">{e.summary.customer_name.chars().next().unwrap_or('?').to_string()}</span>
                                <span class="body">
                                    <span class="row"><b>{e.summary.customer_name.clone()}</b>
                                        <Show when=move || { e.unread > 0 }><span class="badge" data-testid="unread">{e.unread}</span></Show>
                                    </span>
                                    <span class="preview">{last}</span>
                                    <span class="meta">{e.summary.queue_name.clone()}" · "{move || c.lang.get().status(&status)}
                                        {if e.wrap_up { Some(view! { <em class="wrap">{move || c.t().needs_wrap_up}</em> }) } else { None }}</span>
                                </span>
                            </button>
                        </li>
                    }
                }/>
            </ul>
        </nav>
    }
}
