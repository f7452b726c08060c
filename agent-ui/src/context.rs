//! The customer context panel beside the active chat: who the customer is (name,
//! email, verified badge), where they are (the page now and the pages of this visit),
//! their browser and local time, and their earlier conversations with a link to each
//! transcript. It renders what the conversation and the tenant said.

use crate::api;
use crate::i18n_centre::CentreWords as _;
use crate::state::{clock, local_time, Console, Dialog};
use leptos::prelude::*;
use shared::ids::ConversationId;
use shared::protocol::AgentFrame;

/// The visitor's local time now, in their time zone (empty when unknown).
fn their_time(now_ms: f64, time_zone: &str, lang: &str) -> String {
    if time_zone.is_empty() {
        return String::new();
    }
    let options = js_sys::Object::new();
    for (k, v) in [
        ("timeZone", time_zone),
        ("hour", "2-digit"),
        ("minute", "2-digit"),
        ("weekday", "short"),
    ] {
        let _ = js_sys::Reflect::set(&options, &k.into(), &v.into());
    }
    let locales = js_sys::Array::of1(&lang.into());
    let f = js_sys::Intl::DateTimeFormat::new(&locales, &options);
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(now_ms));
    f.format()
        .call1(&wasm_bindgen::JsValue::NULL, &date)
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

/// The panel for one chat.
#[component]
pub fn ContextPanel(
    /// Conversation id of the chat shown.
    id: String,
) -> impl IntoView {
    let c = expect_context::<Console>();
    let Ok(conv) = ConversationId::new(id) else {
        return ().into_any();
    };
    // Earlier conversations are asked for once per chat shown.
    api::send(
        c,
        AgentFrame::History {
            conversation: conv.clone(),
        },
    );
    let conv = StoredValue::new(conv);
    let entry = move || {
        c.chats.with(|v| {
            v.iter()
                .find(|e| e.summary.conversation == conv.get_value())
                .cloned()
        })
    };
    let info = move || entry().and_then(|e| e.visitor).unwrap_or_default();
    let t = move || c.lang.get().c();
    view! {
        <aside class="context" data-testid="context" aria-labelledby="ctx-title">
            <h2 id="ctx-title" class="sr">{move || t().customer_context}</h2>
            <section>
                <h3>{move || c.t().customer}</h3>
                <p class="ctx-name"><bdi data-testid="ctx-name">{move || entry().map(|e| e.summary.customer_name)}</bdi></p>
                {move || entry().and_then(|e| e.summary.customer_email).map(|m| view! { <p class="ctx-line"><bdi data-testid="ctx-email">{m}</bdi></p> })}
                {move || entry().and_then(|e| e.summary.verified_user_id).map(|id| view! { <p><span class="verified" data-testid="ctx-verified">"✓ "{c.t().verified}" "<bdi>{id}</bdi></span></p> })}
            </section>
            <section>
                <h3>{move || t().local_time}</h3>
                <p class="ctx-line" data-testid="ctx-time">{move || {
                    let i = info();
                    let time = their_time(c.now_ms.get(), &i.time_zone, c.lang.get().code());
                    if time.is_empty() { "–".to_string() } else { format!("{time} ({})", i.time_zone) }
                }}</p>
                <h3>{move || t().browser}</h3>
                <p class="ctx-line" data-testid="ctx-browser">{move || { let b = info().browser; if b.is_empty() { "–".to_string() } else { b } }}</p>
            </section>
            <section>
                <h3>{move || t().now_on}</h3>
                {move || info().pages.last().cloned().map(|p| view! {
                    <p class="ctx-page" data-testid="ctx-page">
                        <bdi class="ctx-title">{if p.title.is_empty() { p.url.clone() } else { p.title.clone() }}</bdi>
                        <a href=p.url.clone() target="_blank" rel="noopener noreferrer">{p.url.clone()}</a>
                    </p>
                })}
                <h3>{move || t().pages_seen}</h3>
                <ol class="ctx-pages" data-testid="ctx-pages">
                    {move || info().pages.into_iter().rev().map(|p| {
                        // The path (and query, fragment) after the origin.
                        let path = p.url.splitn(4, '/').nth(3).map(|r| format!("/{r}")).unwrap_or_else(|| "/".into());
                        view! {
                            <li><time>{clock(&p.at)}</time><span><bdi>{if p.title.is_empty() { p.url.clone() } else { p.title.clone() }}</bdi><span class="ctx-path">{path}</span></span></li>
                        }
                    }).collect_view()}
                </ol>
            </section>
            <section>
                <h3>{move || t().earlier}</h3>
                <ul class="ctx-history" data-testid="ctx-history">
                    {move || match entry().and_then(|e| e.history) {
                        None => view! { <li class="empty">{t().loading}</li> }.into_any(),
                        Some(h) if h.is_empty() => view! { <li class="empty">{t().no_earlier}</li> }.into_any(),
                        Some(h) => h.into_iter().map(|p| {
                            let id = p.id.clone();
                            let reasons = p.wrap_ups.iter().map(|w| w.reason.to_string()).collect::<Vec<_>>().join(", ");
                            let rating = p.rating.as_ref().map(|r| format!(" · {} ★", r.score)).unwrap_or_default();
                            let kind = if p.message.is_some() { t().left_message } else { t().chat };
                            view! {
                                <li data-testid="ctx-earlier">
                                    <div><time>{local_time(&p.ended_at)}</time>" · "{kind}{rating}</div>
                                    <div class="ctx-meta">{reasons}</div>
                                    <button type="button" class="link" data-testid="ctx-open"
                                        on:click=move |_| {
                                            c.past.set(None);
                                            c.dialog.set(Dialog::Past(id.clone()));
                                            api::send(c, AgentFrame::PastTranscript { conversation: conv.get_value(), id: id.clone() });
                                        }>{t().open_transcript}</button>
                                </li>
                            }
                        }).collect_view().into_any(),
                    }}
                </ul>
            </section>
        </aside>
    }
    .into_any()
}
