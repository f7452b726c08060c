//! The interaction pane: status line, thread, compose box (live counter, inline
//! explanation of reserved characters), template picker, and the actions
//! Transfer, Conference, End Conference, End and Wrap-up.

use crate::api;
use crate::i18n::Words as _;
use crate::i18n_centre::CentreWords as _;
use crate::state::{clock, ChatEntry, Console, Dialog};
use leptos::prelude::*;
use shared::engine::{ChatStatus, Role};
use shared::protocol::AgentFrame;
use shared::text::{char_count, has_reserved, MAX_MESSAGE_CHARS};
use shared::transcript::{Author, Message};

fn client_id() -> String {
    let r = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
    format!("a{:x}{:08x}{:08x}", js_sys::Date::now() as u64, r(), r())
}

/// The selected chat, or a hint.
#[component]
pub fn Pane() -> impl IntoView {
    let c = expect_context::<Console>();
    // Only a change of the shown chat re-creates the pane (its draft lives there);
    // new messages, acks and socket states update it in place.
    let shown = Memo::new(move |_| {
        c.selected.get().filter(|id| {
            c.chats
                .with(|v| v.iter().any(|e| &e.summary.conversation == id))
        })
    });
    view! {
        <section class="pane" aria-live="off">
            {move || match shown.get() {
                None => view! { <div class="placeholder">{c.t().pick_chat}</div> }.into_any(),
                Some(id) => view! { <ChatPane id=id.to_string()/><crate::context::ContextPanel id=id.to_string()/> }.into_any(),
            }}
        </section>
    }
}

pub(crate) fn message_row(
    c: Console,
    m: Message,
    me: String,
    conv: Option<shared::ids::ConversationId>,
) -> impl IntoView {
    let time = clock(&m.at);
    let body = {
        let m = m.clone();
        move |testid: &'static str| match (m.attachment.clone(), conv.clone()) {
            (Some(a), Some(conv)) => view! { <FileView a=a conv=conv/> }.into_any(),
            _ => view! { <div class="bubble" data-testid=testid>{m.text.clone()}</div> }.into_any(),
        }
    };
    match m.author.clone() {
        Author::System => {
            let text = m.note.as_ref().map_or_else(|| m.text.clone(), |n| c.lang.get_untracked().note(n));
            view! { <li class="sys" data-testid="system-message"><span>{text}</span><time>{time}</time></li> }.into_any()
        }
        Author::Customer { name } => view! {
            <li class="them" data-testid="message"><div class="who">{name}</div>{body("customer-message")}<time>{time}</time></li>
        }
        .into_any(),
        author @ (Author::Agent { .. } | Author::Staff { .. }) => {
            let (mine, name) = match author {
                Author::Agent { id, name } => (id.as_str() == me, name),
                Author::Staff { name } => (false, name),
                _ => (false, String::new()),
            };
            view! {
                <li class=if mine { "me" } else { "colleague" } data-testid="message">
                    <div class="who">{name}</div>{body("agent-bubble")}<time>{time}</time>
                </li>
            }
            .into_any()
        }
    }
}

/// A file in a chat: an image as a thumbnail, a PDF as a labelled button; fetched
/// with the session and opened or downloaded from a blob URL.
#[component]
fn FileView(
    /// The file.
    a: shared::attachment::Attachment,
    /// Its conversation.
    conv: shared::ids::ConversationId,
) -> impl IntoView {
    let c = expect_context::<Console>();
    let url = RwSignal::new(None::<String>);
    let conv = StoredValue::new(conv);
    let id = StoredValue::new(a.id.clone());
    if a.is_image() {
        leptos::task::spawn_local(async move {
            url.set(api::attachment_url(c, &conv.get_value(), &id.get_value()).await);
        });
    }
    let name = a.name.clone();
    let open = move |_| {
        let name = name.clone();
        leptos::task::spawn_local(async move {
            let href = match url.get_untracked() {
                Some(u) => Some(u),
                None => api::attachment_url(c, &conv.get_value(), &id.get_value()).await,
            };
            if let Some(href) = href {
                web::save_as(&href, &name);
            }
        });
    };
    let shown = a.name.clone();
    let size = format!("{} KB", a.size.div_ceil(1024));
    let label = move || format!("{} · {}", c.lang.get().c().open_file, a.name);
    view! {
        <button type="button" class="file" data-testid="file" aria-label=label on:click=open>
            {move || url.get().map(|u| view! { <img src=u alt="" data-testid="thumb"/> })}
            <span class="file-name"><bdi>{shown.clone()}</bdi></span>
            <span class="file-size">{size}</span>
        </button>
    }
}

/// One chat.
#[component]
fn ChatPane(
    /// Conversation id of the chat shown.
    id: String,
) -> impl IntoView {
    let c = expect_context::<Console>();
    let conv = StoredValue::new(shared::ids::ConversationId::new(id).ok());
    let entry = move || -> Option<ChatEntry> { c.current() };
    let draft = RwSignal::new(String::new());
    // The message sent from the draft and not yet acknowledged.
    let in_flight = RwSignal::new(None::<(shared::ids::ClientMsgId, String)>);
    let last_typing = StoredValue::new(0.0f64);
    let thread_ref = NodeRef::<leptos::html::Div>::new();
    let me = c
        .session
        .get_untracked()
        .map(|s| s.agent)
        .unwrap_or_default();

    Effect::new(move |_| {
        c.chats.track();
        if let Some(el) = thread_ref.get() {
            el.set_scroll_top(el.scroll_height());
        }
    });
    // Parameters of the last template whose values lost `<` or `>` (shown, never silent).
    let stripped_note = RwSignal::new(Vec::<String>::new());
    // A rendered template goes into the compose box.
    Effect::new(move |_| {
        if let Some((cid, text, stripped)) = c.fill.get() {
            if Some(&cid) == conv.get_value().as_ref() {
                draft.set(text);
                stripped_note.set(stripped);
                c.fill.set(None);
            }
        }
    });

    let count = move || draft.with(|d| char_count(d));
    let reserved = move || draft.with(|d| has_reserved(d));
    let too_long = move || count() > MAX_MESSAGE_CHARS;
    let at_limit = move || count() >= MAX_MESSAGE_CHARS;
    let can_send = move || {
        !reserved()
            && !too_long()
            && !draft.with(|d| d.trim().is_empty())
            && in_flight.with(Option::is_none)
    };
    let send = move || {
        let Some(conversation) = conv.get_value() else {
            return;
        };
        if !can_send() {
            return;
        }
        let Ok(client_id) = shared::ids::ClientMsgId::new(client_id()) else {
            return;
        };
        let text = draft.get_untracked();
        // The draft stays until the conversation acknowledges the message.
        in_flight.set(Some((client_id.clone(), text.clone())));
        api::say(c, &conversation, client_id, text);
        api::typing(&conversation, false);
        // The next keystroke says "typing" again at once.
        last_typing.set_value(0.0);
    };
    // Acknowledged: clear the draft (unless the agent already changed it).
    Effect::new(move |_| {
        let Some((cid, text)) = in_flight.get() else {
            return;
        };
        let acked = c.chats.with(|v| {
            v.iter()
                .find(|e| Some(&e.summary.conversation) == conv.get_value().as_ref())
                .is_none_or(|e| !e.pending.iter().any(|p| p.client_id == cid))
        });
        if acked {
            in_flight.set(None);
            if draft.get_untracked() == text {
                draft.set(String::new());
            }
        }
    });
    let on_input = move |e: leptos::ev::Event| {
        let v = event_target_value(&e);
        // The box refuses more than the limit.
        let v: String = if char_count(&v) > MAX_MESSAGE_CHARS {
            v.chars().take(MAX_MESSAGE_CHARS).collect()
        } else {
            v
        };
        let cleared = v.trim().is_empty();
        draft.set(v);
        if cleared {
            // An emptied box is not typing: say so at once.
            if last_typing.get_value() > 0.0 {
                last_typing.set_value(0.0);
                if let Some(conversation) = conv.get_value() {
                    api::typing(&conversation, false);
                }
            }
            return;
        }
        let now = js_sys::Date::now();
        if now - last_typing.get_value() > 3000.0 {
            last_typing.set_value(now);
            if let Some(conversation) = conv.get_value() {
                api::typing(&conversation, true);
            }
        }
    };
    let on_key = move |e: leptos::ev::KeyboardEvent| {
        if e.key() == "Enter" && !e.shift_key() && !e.is_composing() {
            e.prevent_default();
            send();
        }
    };
    let act = move |f: fn(shared::ids::ConversationId) -> AgentFrame| {
        move |_| {
            if let Some(id) = conv.get_value() {
                api::send(c, f(id));
            }
        }
    };
    let dialog = move |f: fn(shared::ids::ConversationId) -> Dialog| {
        move |_| {
            if let Some(id) = conv.get_value() {
                if !matches!(f(id.clone()), Dialog::WrapUp(_)) {
                    api::send(c, AgentFrame::Targets);
                }
                c.dialog.set(f(id));
            }
        }
    };
    let status = move || {
        entry()
            .map(|e| e.summary.status)
            .unwrap_or(ChatStatus::Ended)
    };
    let active = move || {
        matches!(
            status(),
            ChatStatus::Active
                | ChatStatus::ConferenceRequested { .. }
                | ChatStatus::Conference { .. }
        ) && !entry().is_some_and(|e| e.wrap_up)
    };
    let owner = move || entry().is_some_and(|e| e.summary.role == Role::Owner);
    let in_conf = move || {
        matches!(
            status(),
            ChatStatus::Conference { .. } | ChatStatus::ConferenceRequested { .. }
        )
    };
    let plain = move || matches!(status(), ChatStatus::Active);
    let wrap = move || entry().is_some_and(|e| e.wrap_up);

    view! {
        <div class="chatpane">
            <header class="pane-head">
                <div>
                    <h2 data-testid="pane-customer">{move || entry().map(|e| e.summary.customer_name)}</h2>
                    <p class="sub">
                        {move || entry().and_then(|e| e.summary.customer_email).map(|m| format!("{m} · ")).unwrap_or_default()}
                        {move || entry().map(|e| e.summary.queue_name)}
                        {move || entry().and_then(|e| e.summary.verified_user_id).map(|id| view! {
                            <span class="verified" data-testid="verified">"✓ "{c.t().verified}" "{id}</span>
                        })}
                    </p>
                </div>
                <span class="status" class:conf=in_conf data-testid="status-line">{move || c.lang.get().status(&status())}</span>
            </header>
            <div class="toolbar" role="toolbar">
                <Show when=move || active() && owner() && plain()>
                    <button type="button" data-testid="transfer" on:click=dialog(Dialog::Transfer)>{move || c.t().transfer}</button>
                    <button type="button" data-testid="conference" on:click=dialog(Dialog::Conference)>{move || c.t().conference}</button>
                </Show>
                <Show when=move || active() && in_conf()>
                    <button type="button" data-testid="end-conference" on:click=act(|conversation| AgentFrame::EndConference { conversation })>{move || c.t().end_conference}</button>
                </Show>
                <Show when=move || active() && owner()>
                    <button type="button" class="danger" data-testid="end" on:click=act(|conversation| AgentFrame::End { conversation })>{move || c.t().end}</button>
                </Show>
                <Show when=wrap>
                    <button type="button" class="primary" data-testid="open-wrap-up" on:click=dialog(Dialog::WrapUp)>{move || c.t().wrap_up}</button>
                </Show>
            </div>
            <div class="thread" node_ref=thread_ref tabindex="0" role="log" aria-live="polite" aria-label=move || c.t().messages_label>
                <ol data-testid="thread">
                    {move || entry().map(|e| e.messages.into_iter().map(|m| message_row(c, m, me.clone(), conv.get_value())).collect_view())}
                </ol>
                <Show when=move || entry().and_then(|e| e.typing).is_some()>
                    <p class="typing" data-testid="typing">{move || entry().and_then(|e| e.typing).map(|n| c.lang.get().typing(&n))}</p>
                </Show>
            </div>
            <Show when=active>
                <div class="compose">
                    <div class="compose-tools">
                        <label class="tpl">
                            <span>{move || c.t().templates}</span>
                            <select data-testid="template" on:change=move |e| {
                                    let v = event_target_value(&e);
                                    if let (Some(conversation), Ok(template)) = (conv.get_value(), shared::ids::TemplateId::new(v)) {
                                        api::send(c, AgentFrame::Template { conversation, template });
                                    }
                                } prop:value="">
                                <option value="">"—"</option>
                                <For each=move || c.templates.get() key=|t| t.id.clone() children=|t| view! { <option value=t.id.to_string()>{t.name}</option> }/>
                            </select>
                        </label>
                        <label class="attach ghost" title=move || c.lang.get().c().attach>
                            <span class="sr">{move || c.lang.get().c().attach}</span>
                            <svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="m21.4 11.1-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"/></svg>
                            <input type="file" data-testid="attach" accept="image/png,image/jpeg,image/gif,image/webp,application/pdf"
                                on:change=move |e| {
                                    let input: web_sys::HtmlInputElement = event_target(&e);
                                    if let (Some(f), Some(conversation)) = (input.files().and_then(|l| l.get(0)), conv.get_value()) {
                                        api::upload(c, conversation, f);
                                    }
                                    input.set_value("");
                                }/>
                        </label>
                        <Show when=move || c.upload.with(|u| u.as_ref().is_some_and(|u| Some(&u.0) == conv.get_value().as_ref()))>
                            <span class="upload" role="status" data-testid="upload">
                                <bdi>{move || c.upload.get().map(|u| u.1).unwrap_or_default()}</bdi>
                                <progress max="100" aria-label=move || c.lang.get().c().uploading prop:value=move || c.upload.get().map_or(0, |u| u.2)></progress>
                            </span>
                        </Show>
                        <span class="counter" class:over=too_long data-testid="counter">{move || format!("{} / {}", count(), MAX_MESSAGE_CHARS)}</span>
                    </div>
                    <textarea rows="3" aria-label=move || c.t().compose aria-describedby="compose-hint" data-testid="compose"
                        aria-invalid=move || if reserved() { "true" } else { "false" }
                        prop:value=move || draft.get() on:input=on_input on:keydown=on_key></textarea>
                    <Show when=at_limit>
                        <p class="inline-error" role="status">{move || c.t().too_long}</p>
                    </Show>
                    <Show when=reserved>
                        <p class="inline-error" role="alert" data-testid="reserved-hint">{move || c.t().reserved}</p>
                    </Show>
                    <Show when=move || stripped_note.with(|s| !s.is_empty())>
                        <p class="inline-note" role="status" data-testid="stripped-note">
                            {move || c.lang.get().stripped(&stripped_note.get())}
                            <button type="button" class="link" on:click=move |_| stripped_note.set(vec![])>{move || c.t().close}</button>
                        </p>
                    </Show>
                    <div class="compose-foot">
                        <span id="compose-hint" class="hint">{move || c.t().hint}</span>
                        <button type="button" class="primary" data-testid="send" disabled=move || !can_send() on:click=move |_| send()>{move || c.t().send}</button>
                    </div>
                </div>
            </Show>
        </div>
    }
}
