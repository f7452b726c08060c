//! The contact request popover (SPEC §3.1): customer name, queue name, the thread
//! so far, agent name, date, and a timer since the conversation was received.

use crate::api;
use crate::state::{clock, local_time, mmss, Console};
use leptos::prelude::*;
use shared::engine::OfferKind;
use shared::protocol::AgentFrame;

/// The popover, shown while an offer is pending.
#[component]
pub fn OfferPopover() -> impl IntoView {
    let c = expect_context::<Console>();
    let accept_ref = NodeRef::<leptos::html::Button>::new();
    // Bring keyboard focus to Accept when an offer appears, unless the agent is typing.
    Effect::new(move |_| {
        if let Some(b) = accept_ref.get() {
            let typing = document()
                .active_element()
                .is_some_and(|e| matches!(e.tag_name().as_str(), "TEXTAREA" | "INPUT" | "SELECT"));
            if !typing {
                let _ = b.focus();
            }
        }
    });
    view! {
        <Show when=move || c.offer.get().is_some()>
            {move || c.offer.get().map(|(o, thread)| {
                let received = o.received_at.timestamp_millis() as f64;
                let deadline = o.deadline.timestamp_millis() as f64;
                let id = o.conversation.clone();
                let kind = match &o.kind {
                    OfferKind::Chat => None,
                    OfferKind::Transfer { from_name } => Some(format!("{} {from_name}", c.t().transfer_offer)),
                    OfferKind::Conference { owner_name } => Some(format!("{} {owner_name}", c.t().conference_offer)),
                };
                view! {
                    <section class="offer" role="alertdialog" aria-labelledby="offer-title" data-testid="offer">
                        <header>
                            <h2 id="offer-title">{move || c.t().offer_title}</h2>
                            <span class="timer" data-testid="offer-timer" title=move || c.t().waiting>{move || mmss(c.now_ms.get() - received)}</span>
                        </header>
                        {kind.map(|k| view! { <p class="kind">{k}</p> })}
                        <dl>
                            <dt>{move || c.t().customer}</dt><dd data-testid="offer-customer">{o.customer_name.clone()}</dd>
                            <dt>{move || c.t().queue}</dt><dd data-testid="offer-queue">{o.queue_name.clone()}</dd>
                            <dt>{move || c.t().agent_label}</dt><dd>{o.agent_name.clone()}</dd>
                            <dt>{move || c.t().received}</dt><dd>{local_time(&o.received_at)}</dd>
                        </dl>
                        <ol class="mini-thread" data-testid="offer-thread">
                            {thread.into_iter().filter(|m| m.note.is_none()).map(|m| view! {
                                <li><time>{clock(&m.at)}</time><span>{m.text}</span></li>
                            }).collect_view()}
                        </ol>
                        <footer>
                            <span class="expires">{move || c.t().expires}" "{move || mmss(deadline - c.now_ms.get())}</span>
                            <button type="button" class="primary" node_ref=accept_ref data-testid="accept"
                                on:click=move |_| api::send(c, AgentFrame::Accept { conversation: id.clone() })>{move || c.t().accept}</button>
                        </footer>
                    </section>
                }
            })}
        </Show>
    }
}
