//! The live chat: thread (announced to screen readers), typing indicator,
//! composer (Enter sends, Shift+Enter newline), end chat, transcript download/copy.

use crate::api;
use crate::i18n::Words as _;
use crate::state::{Pending, Widget};
use leptos::prelude::*;
use shared::transcript::{Author, Message};

fn local(m: &Message) -> js_sys::Date {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        m.at.timestamp_millis() as f64
    ))
}

/// Local time "HH:MM" of a message.
pub fn clock(m: &Message) -> String {
    let d = local(m);
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// Local date "YYYY-MM-DD" of a message.
fn day(m: &Message) -> String {
    let d = local(m);
    format!(
        "{:04}-{:02}-{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date()
    )
}

fn transcript_text(w: Widget) -> String {
    let lang = w.lang;
    let you = lang.t().you;
    w.messages
        .get_untracked()
        .iter()
        .map(|m| {
            let who = match &m.author {
                Author::Customer { .. } => you.to_string(),
                Author::Agent { name, .. } | Author::Staff { name } => name.clone(),
                Author::System => "—".into(),
            };
            let text = m
                .note
                .as_ref()
                .map_or_else(|| m.text.clone(), |n| lang.note(n));
            format!("[{} {}] {who}: {text}", day(m), clock(m))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn download(w: Widget) {
    let text = transcript_text(w);
    let parts = js_sys::Array::of1(&text.into());
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("text/plain;charset=utf-8");
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    web::save_as(&url, "chat-transcript.txt");
    let _ = web_sys::Url::revoke_object_url(&url);
}

/// A row of the thread.
enum Row {
    /// A stored message, whether it starts and ends a group.
    Said(Message, bool, bool),
    /// Sent, not yet acknowledged.
    Pending(Pending),
}

thread_local! {
    /// When this visitor's typing was last reported (ms).
    static LAST_TYPING: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

/// The chat screen.
#[component]
pub fn ChatView() -> impl IntoView {
    let w = expect_context::<Widget>();
    let t = w.lang.t();
    let draft = RwSignal::new(String::new());
    let copied = RwSignal::new(false);
    let confirm_end = RwSignal::new(false);
    let thread_ref = NodeRef::<leptos::html::Div>::new();
    let ended = Memo::new(move |_| api::ended(w));

    // Keep the newest message in view: after each redraw of the thread or the typing
    // line, once the frame is laid out (no effect of its own: each costs code).
    let to_end = move || {
        request_animation_frame(move || {
            if let Some(el) = thread_ref.get_untracked() {
                el.set_scroll_top(el.scroll_height());
            }
        })
    };

    let send = move || {
        let text = draft.get_untracked();
        if text.trim().is_empty() {
            return;
        }
        api::send_text(w, text);
        api::send_typing(false);
        draft.set(String::new());
    };
    let on_key = move |e: leptos::ev::KeyboardEvent| {
        if e.key() == "Enter" && !e.shift_key() && !e.is_composing() {
            e.prevent_default();
            send();
        }
    };
    let on_input = move |e: leptos::ev::Event| {
        draft.set(event_target_value(&e));
        let now = js_sys::Date::now();
        if now - LAST_TYPING.get() > 3000.0 {
            LAST_TYPING.set(now);
            api::send_typing(true);
        }
    };

    // Consecutive messages of one author within 5 minutes are a group: the name shows
    // on the first, the time on the last. Messages not yet acknowledged follow.
    let rows = move || {
        let same = |a: &Message, b: &Message| {
            a.author == b.author
                && a.author != Author::System
                && (b.at - a.at).num_seconds().abs() < 300
        };
        let mut rows = w.messages.with(|v| {
            (0..v.len())
                .map(|i| {
                    let first = i == 0 || !same(&v[i - 1], &v[i]);
                    let last = i + 1 == v.len() || !same(&v[i], &v[i + 1]);
                    Row::Said(v[i].clone(), first, last)
                })
                .collect::<Vec<_>>()
        });
        rows.extend(w.pending.get().into_iter().map(Row::Pending));
        to_end();
        rows
    };
    // One view for every kind of row (a single list item type keeps the wasm small).
    // The list is drawn again on every change, each row over the element in its place
    // (no keyed list: its code is 5 KB of the widget's gzip size), so an element keeps
    // its focus; thumbnails come from `api`'s cache.
    let row = move |r: Row| {
        let lang = w.lang;
        let bubble = |text: String, testid: Option<&'static str>| {
            view! { <div class="bubble" data-testid=testid><bdi>{text}</bdi></div> }.into_any()
        };
        let (class, testid, seq, who, body, time) = match r {
            Row::Pending(p) => (
                "me pending",
                "pending",
                None,
                None,
                bubble(p.text, None),
                Some(t.sending.to_string()),
            ),
            Row::Said(m, first, last) => {
                let time = last.then(|| clock(&m));
                let body = |testid| match m.attachment.clone() {
                    Some(a) => view! { <FileView a=a lang=lang/> }.into_any(),
                    None => bubble(m.text.clone(), testid),
                };
                match &m.author {
                    Author::System => {
                        let text = m
                            .note
                            .as_ref()
                            .map_or_else(|| m.text.clone(), |n| lang.note(n));
                        let body = view! { <span>{text}</span> }.into_any();
                        ("sys", "system-message", None, None, body, time)
                    }
                    Author::Customer { .. } => {
                        ("me", "message", Some(m.seq), None, body(None), time)
                    }
                    Author::Agent { name, .. } | Author::Staff { name } => {
                        let who = first.then(|| name.clone());
                        let body = body(Some("agent-message"));
                        ("them", "message", Some(m.seq), who, body, time)
                    }
                }
            }
        };
        view! {
            <li class=class data-testid=testid data-seq=seq>
                {who.map(|n| view! { <div class="who"><bdi>{n}</bdi></div> })}
                {body}
                {time.map(|x| view! { <time>{x}</time> })}
            </li>
        }
    };

    view! {
        <div class="chat">
            <div class="thread" node_ref=thread_ref tabindex="0" role="log" aria-live="polite" aria-relevant="additions" aria-label=t.thread>
                <ol data-testid="thread">
                    {move || rows().into_iter().map(row).collect_view()}
                </ol>
                {move || w.typing.get().inspect(|_| to_end()).map(|n| view! {
                    <p class="typing" aria-live="polite" data-testid="typing">
                        <span class="dots" aria-hidden="true"><i></i><i></i><i></i></span>
                        {w.lang.typing(&n)}
                    </p>
                })}
            </div>
            // Drawn again only when the chat starts or stops being over (a memo: the
            // status changes on every reconnect), so the composer keeps its focus.
            {move || if ended.get() {
                view! {
                <Rating/>
                <div class="ended" data-testid="ended">
                    <button type="button" on:click=move |_| download(w) data-testid="download">{t.download}</button>
                    <button type="button" on:click=move |_| {
                        if let Some(c) = web_sys::window().map(|x| x.navigator().clipboard()) {
                            let _ = c.write_text(&transcript_text(w));
                            copied.set(true);
                        }
                    } data-testid="copy">{move || if copied.get() { t.copied } else { t.copy }}</button>
                    {move || waited_out(w).then(|| view! {
                        <button type="button" class="primary" data-testid="leave-after-wait" on:click=move |_| api::leave_message_instead(w)>{t.leave}</button>
                    })}
                    <button type="button" class="primary" on:click=move |_| api::new_chat(w) data-testid="new-chat">{t.new_chat}</button>
                </div>
                }.into_any()
            } else {
                view! {
                {move || w.upload.get().map(|name| (name, w.upload_pct.get())).map(|(name, pct)| view! {
                    <div class="upload" role="status" data-testid="upload">
                        <span><bdi>{name}</bdi></span>
                        <progress max="100" aria-label=t.uploading prop:value=pct></progress>
                    </div>
                })}
                <div class="composer">
                    <label class="attach" title=t.attach>
                        <span class="sr">{t.attach}</span>
                        <svg width="20" height="20" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="m21.4 11.1-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"/></svg>
                        <input type="file" data-testid="attach" accept="image/png,image/jpeg,image/gif,image/webp,application/pdf"
                            on:change=move |e| {
                                let input: web_sys::HtmlInputElement = event_target(&e);
                                if let Some(f) = input.files().and_then(|l| l.get(0)) {
                                    api::upload(w, f);
                                }
                                input.set_value("");
                            }/>
                    </label>
                    <textarea rows="2" maxlength="1000" aria-label=t.message placeholder=t.placeholder data-testid="composer"
                        prop:value=move || draft.get() on:input=on_input on:keydown=on_key></textarea>
                    <button type="button" class="send" aria-label=t.send on:click=move |_| send() data-testid="send">
                        <svg width="20" height="20" viewBox="0 0 24 24" aria-hidden="true"><path d="M3.4 20.4 21 12 3.4 3.6l.1 6.5L15 12l-11.5 1.9z" fill="currentColor"/></svg>
                    </button>
                </div>
                <div class="actions">
                    <span></span>
                    // One button that asks again before ending: the focus stays on it.
                    <button type="button" class=move || if confirm_end.get() { "link danger" } else { "link" }
                        data-testid=move || if confirm_end.get() { "end-confirm" } else { "end" }
                        on:click=move |_| if confirm_end.get_untracked() {
                            api::end();
                            confirm_end.set(false);
                        } else {
                            confirm_end.set(true);
                        }>
                        {move || if confirm_end.get() { t.end_confirm } else { t.end }}
                    </button>
                </div>
                }.into_any()
            }}
        </div>
    }
}

/// After the end: 1 to 5 stars and an optional comment, sent once.
#[component]
fn Rating() -> impl IntoView {
    let w = expect_context::<Widget>();
    let t = w.lang.t();
    let score = RwSignal::new(0u8);
    let comment = RwSignal::new(String::new());
    view! {
        {move || if w.rated.get() {
            view! { <p class="rated" role="status" data-testid="rated">{t.rate_thanks}</p> }.into_any()
        } else { view! {
            <form class="rating" data-testid="rating" on:submit=move |e: leptos::ev::SubmitEvent| {
                e.prevent_default();
                if score.get_untracked() > 0 {
                    api::rate(score.get_untracked(), comment.get_untracked());
                }
            }>
                <fieldset>
                    <legend>{t.rate_title}</legend>
                    <div class="stars">
                        {(1u8..=5).map(|n| view! {
                            <button type="button" class={move || if score.get() >= n { "star on" } else { "star" }}
                                aria-pressed={move || if score.get() == n { "true" } else { "false" }}
                                aria-label=format!("{n} {}", t.rate_of) data-testid=format!("star-{n}")
                                on:click=move |_| score.set(n)>"★"</button>
                        }).collect_view()}
                    </div>
                </fieldset>
                <textarea rows="2" maxlength="1000" aria-label=t.rate_comment placeholder=t.rate_comment data-testid="rating-comment"
                    prop:value=move || comment.get() on:input=move |e| comment.set(event_target_value(&e))></textarea>
                <button type="submit" class="primary" disabled=move || score.get() == 0 data-testid="send-rating">{t.rate_send}</button>
            </form>
        }.into_any() }}
    }
}

/// Whether the chat ended because nobody took it within the queue's maximum wait.
fn waited_out(w: Widget) -> bool {
    w.messages.with(|v| {
        v.iter().any(|m| {
            matches!(
                m.note,
                Some(shared::engine::SystemNote::Ended {
                    by: shared::engine::EndedBy::MaxWait
                })
            )
        })
    })
}

/// A file in the thread: an image as a thumbnail, a PDF as a labelled button; both
/// are fetched with the chat's credentials and open or download from a blob URL.
#[component]
fn FileView(
    /// The file.
    a: shared::attachment::Attachment,
    /// The widget's language.
    lang: crate::i18n::Lang,
) -> impl IntoView {
    let url = RwSignal::new(api::cached_attachment_url(&a.id));
    let id = a.id.clone();
    if a.is_image() && url.get_untracked().is_none() {
        leptos::task::spawn_local(async move {
            url.set(api::attachment_url(&id).await);
        });
    }
    let name = a.name.clone();
    let open = move |_| {
        let (id, name) = (a.id.clone(), name.clone());
        leptos::task::spawn_local(async move {
            let href = match url.get_untracked() {
                Some(u) => Some(u),
                None => api::attachment_url(&id).await,
            };
            if let Some(href) = href {
                web::save_as(&href, &name);
            }
        });
    };
    let size = format!("{} KB", a.size.div_ceil(1024));
    let label = format!("{} · {}", lang.t().open_file, a.name);
    view! {
        <button type="button" class="file" data-testid="file" aria-label=label on:click=open>
            {move || url.get().map(|u| view! { <img src=u alt="" data-testid="thumb"/> })}
            <span class="file-name"><bdi>{a.name.clone()}</bdi></span>
            <span class="file-size">{size}</span>
        </button>
    }
}
