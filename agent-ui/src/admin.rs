//! The admin screen (`/admin/`, or the Admin tab for agents whose role is admin):
//! sites, queues, agents, reasons, templates and webhooks, edited as a form instead
//! of hand-written JSON, and the webhook deliveries that failed.
//!
//! Rules: the draft is checked with `shared`'s own [`TenantConfig::validate`] on every
//! edit, and the problem is shown beside the item it names
//! ([`shared::config::ConfigError::item`]); the service checks again on save and its
//! answer is shown the same way. Nothing here decides a rule.

use crate::api;
use crate::i18n_centre::CentreTexts;
use crate::i18n_centre::CentreWords as _;
use crate::state::{local_time, Console, Screen};
use chrono::Weekday;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::config::{
    AgentConfig, ConfigError, QueueConfig, Reason, Role, SiteConfig, TemplateConfig, TenantConfig,
};
use shared::hours::BusinessHours;
use shared::ids::{AgentId, QueueId, ReasonId, SiteKey, TemplateId};
use shared::protocol::AdminConfig;
use shared::webhook::{DeadLetter, WebhookConfig, WebhookEvent};
use std::collections::BTreeMap;

type Label = fn(&'static CentreTexts) -> &'static str;

/// The editor's state: a small `Copy` bundle of signals.
#[derive(Clone, Copy)]
struct Ed {
    c: Console,
    draft: RwSignal<Option<TenantConfig>>,
    /// Bumped when rows are added, removed or loaded: rows are drawn again.
    rev: RwSignal<u32>,
    /// New passwords, parallel to the agents.
    passwords: RwSignal<Vec<String>>,
    secret: RwSignal<String>,
    dirty: RwSignal<bool>,
    server_error: RwSignal<Option<ConfigError>>,
    saved: RwSignal<bool>,
    problem: Memo<Option<ConfigError>>,
}

impl Ed {
    /// Applies an edit to the draft.
    fn set(self, f: impl FnOnce(&mut TenantConfig)) {
        self.draft.update(|d| {
            if let Some(d) = d {
                f(d)
            }
        });
        self.dirty.set(true);
        self.saved.set(false);
        self.server_error.set(None);
    }
    /// A structural edit (rows added or removed).
    fn reshape(self, f: impl FnOnce(&mut TenantConfig, &mut Vec<String>)) {
        let mut pw = self.passwords.get_untracked();
        self.set(|d| f(d, &mut pw));
        self.passwords.set(pw);
        self.rev.update(|r| *r += 1);
    }
    fn get<T>(self, f: impl FnOnce(&TenantConfig) -> Option<T>) -> Option<T> {
        self.draft.with_untracked(|d| d.as_ref().and_then(f))
    }
    fn len(self, f: impl Fn(&TenantConfig) -> usize) -> usize {
        self.draft.with(|d| d.as_ref().map_or(0, f))
    }
    fn t(self) -> &'static CentreTexts {
        self.c.lang.get().c()
    }
    /// The problem with item `kind` whose id is `id()` now, if any.
    fn problem_of(
        self,
        kind: &'static str,
        id: impl Fn() -> String + Send + Sync + 'static,
    ) -> impl IntoView {
        move || {
            let id = id();
            self.problem
                .get()
                .filter(|e| e.item() == Some((kind, id.as_str())))
                .map(|e| view! { <p class="field-error" role="alert">{e.0}</p> })
        }
    }
}

/// Row keys: (revision, index).
fn rows(ed: Ed, len: impl Fn(&TenantConfig) -> usize + 'static) -> impl Fn() -> Vec<(u32, usize)> {
    move || {
        let r = ed.rev.get();
        (0..ed.len(&len)).map(|i| (r, i)).collect()
    }
}

fn text(
    ed: Ed,
    label: Label,
    value: String,
    set: impl Fn(&mut TenantConfig, String) + 'static,
) -> impl IntoView {
    view! {
        <label class="fld"><span>{move || label(ed.t())}</span>
            <input type="text" prop:value=value on:input=move |e| {
                let v = event_target_value(&e);
                ed.set(|d| set(d, v));
            }/>
        </label>
    }
}

fn number(
    ed: Ed,
    label: Label,
    value: u32,
    set: impl Fn(&mut TenantConfig, u32) + 'static,
) -> impl IntoView {
    view! {
        <label class="fld numeric"><span>{move || label(ed.t())}</span>
            <input type="number" min="0" inputmode="numeric" prop:value=value.to_string() on:input=move |e| {
                if let Ok(v) = event_target_value(&e).trim().parse::<u32>() {
                    ed.set(|d| set(d, v));
                }
            }/>
        </label>
    }
}

/// An id field: a valid id is applied; an invalid one is named beside the field.
fn id_field<T: 'static>(
    ed: Ed,
    label: Label,
    value: String,
    parse: fn(String) -> Result<T, shared::ids::IdError>,
    set: impl Fn(&mut TenantConfig, T) + 'static,
) -> impl IntoView {
    let bad = RwSignal::new(false);
    view! {
        <label class="fld id"><span>{move || label(ed.t())}</span>
            <input type="text" prop:value=value spellcheck="false" aria-invalid=move || bad.get().then_some("true")
                on:input=move |e| match parse(event_target_value(&e).trim().to_string()) {
                    Ok(id) => { bad.set(false); ed.set(|d| set(d, id)); }
                    Err(_) => bad.set(true),
                }/>
            <Show when=move || bad.get()><span class="field-error">{move || ed.t().invalid_id}</span></Show>
        </label>
    }
}

fn remove_button(
    ed: Ed,
    what: String,
    f: impl Fn(&mut TenantConfig, &mut Vec<String>) + Copy + 'static,
) -> impl IntoView {
    view! {
        <button type="button" class="ghost small danger" aria-label=move || format!("{} · {what}", ed.t().remove)
            on:click=move |_| ed.reshape(f)>{move || ed.t().remove}</button>
    }
}

/// The admin screen.
#[component]
pub fn AdminScreen() -> impl IntoView {
    let c = expect_context::<Console>();
    let draft = RwSignal::new(None::<TenantConfig>);
    let server_error = RwSignal::new(None::<ConfigError>);
    let problem = Memo::new(move |_| {
        server_error
            .get()
            .or_else(|| draft.with(|d| d.as_ref().and_then(|d| d.validate().err())))
    });
    let ed = Ed {
        c,
        draft,
        rev: RwSignal::new(0),
        passwords: RwSignal::new(vec![]),
        secret: RwSignal::new(String::new()),
        dirty: RwSignal::new(false),
        server_error,
        saved: RwSignal::new(false),
        problem,
    };
    let load_error = RwSignal::new(None::<String>);
    let dead = RwSignal::new(Vec::<DeadLetter>::new());
    let busy = RwSignal::new(false);
    let parked = RwSignal::new(Vec::<shared::rpc::ParkedDelivery>::new());
    let reload_dead = move || {
        spawn_local(async move {
            if let Ok(d) = api::dead_letters(c).await {
                dead.set(d);
            }
            if let Ok(p) = api::parked_deliveries(c).await {
                parked.set(p);
            }
        })
    };
    let load = move || {
        spawn_local(async move {
            match api::load_config(c).await {
                Ok(cfg) => {
                    ed.passwords.set(vec![String::new(); cfg.agents.len()]);
                    draft.set(Some(cfg));
                    ed.rev.update(|r| *r += 1);
                    ed.dirty.set(false);
                    load_error.set(None);
                }
                Err(e) => load_error.set(Some(e)),
            }
        });
        reload_dead();
    };
    // Load when the screen opens for an admin (the role comes with the snapshot).
    Effect::new(move |_| {
        if c.role.get().administers() && draft.with_untracked(|d| d.is_none()) {
            load();
        }
    });
    let save = move |_| {
        let Some(config) = draft.get_untracked() else {
            return;
        };
        let pw = ed.passwords.get_untracked();
        let passwords: BTreeMap<AgentId, String> = config
            .agents
            .iter()
            .zip(pw)
            .filter(|(_, p)| !p.is_empty())
            .map(|(a, p)| (a.id.clone(), p))
            .collect();
        let secret = ed.secret.get_untracked();
        let body = AdminConfig {
            config,
            passwords,
            site_secrets: BTreeMap::new(),
            password_hashes: BTreeMap::new(),
            webhook_secret: (!secret.is_empty()).then_some(secret),
        };
        busy.set(true);
        spawn_local(async move {
            match api::save_config(c, &body).await {
                Ok(()) => {
                    ed.dirty.set(false);
                    ed.saved.set(true);
                    ed.secret.set(String::new());
                    ed.passwords
                        .update(|p| p.iter_mut().for_each(String::clear));
                    ed.rev.update(|r| *r += 1);
                }
                Err(m) => server_error.set(Some(ConfigError(
                    m.trim_start_matches("invalid configuration: ").to_string(),
                ))),
            }
            busy.set(false);
        });
    };
    view! {
        <div class="screen admin" data-testid="admin">
            <Show when=move || c.role.get().administers() fallback=move || view! {
                <div class="placeholder" role="status">
                    <p>{move || ed.t().not_admin}</p>
                    <button type="button" class="ghost" on:click=move |_| c.screen.set(Screen::Chats)>{move || ed.t().chats_tab}</button>
                </div>
            }>
                <header class="admin-head">
                    <h1>{move || ed.t().admin_title}</h1>
                    <span class="save-state" role="status" data-testid="save-state">
                        {move || if ed.saved.get() { ed.t().saved } else if ed.dirty.get() { ed.t().unsaved } else { "" }}
                    </span>
                    <button type="button" class="primary" data-testid="save"
                        disabled=move || busy.get() || !ed.dirty.get() || problem.get().is_some() && server_error.get().is_none()
                        on:click=save>{move || ed.t().save}</button>
                </header>
                <Show when=move || load_error.get().is_some()>
                    <p class="form-error" role="alert">{move || load_error.get()}</p>
                </Show>
                <Show when=move || problem.get().is_some()>
                    <p class="form-error" role="alert" data-testid="problem">
                        <strong>{move || ed.t().problem}": "</strong>{move || problem.get().map(|p| p.0)}
                    </p>
                </Show>
                <Show when=move || draft.with(|d| d.is_some()) fallback=move || view! { <p class="placeholder">{move || ed.t().loading}</p> }>
                    <Centre ed=ed/>
                    <Sites ed=ed/>
                    <Queues ed=ed/>
                    <Agents ed=ed/>
                    <Reasons ed=ed idle=true/>
                    <Reasons ed=ed idle=false/>
                    <Templates ed=ed/>
                    <Webhooks ed=ed dead=dead reload=Callback::new(move |_| reload_dead())/>
                    <Parked ed=ed parked=parked reload=Callback::new(move |_| reload_dead())/>
                </Show>
            </Show>
        </div>
    }
}

/// Updates the routing could not deliver to a conversation (parked outbox rows), with
/// a retry each.
#[component]
fn Parked(
    /// The editor.
    ed: Ed,
    /// The parked deliveries, newest first.
    parked: RwSignal<Vec<shared::rpc::ParkedDelivery>>,
    /// Reloads the list.
    reload: Callback<()>,
) -> impl IntoView {
    let c = ed.c;
    // How many the last "send all again" sent.
    let sent_again = RwSignal::new(None::<u32>);
    // Asked for by the supervisor's banner: scrolled into view, its heading focused.
    let heading = NodeRef::<leptos::html::H2>::new();
    Effect::new(move |_| {
        if c.reveal.get() == Some("parked") {
            if let Some(h) = heading.get() {
                h.scroll_into_view();
                let _ = h.focus();
                c.reveal.set(None);
            }
        }
    });
    view! {
        <section class="panel admin-section" data-testid="parked" aria-labelledby="h-parked">
            <div class="section-head">
                <h2 id="h-parked" tabindex="-1" node_ref=heading>{move || ed.t().parked}</h2>
                <Show when=move || parked.with(|l| !l.is_empty())>
                    <button type="button" class="ghost small" data-testid="retry-all-parked" on:click=move |_| {
                        spawn_local(async move {
                            match api::retry_all_parked(c).await {
                                Ok(r) => sent_again.set(Some(r.retried)),
                                Err(e) => c.error.set(Some(e)),
                            }
                            reload.run(());
                        });
                    }>{move || ed.t().retry_all}</button>
                </Show>
            </div>
            <p class="hint">{move || ed.t().parked_intro}</p>
            <p class="hint" role="status" data-testid="sent-again">
                {move || sent_again.get().map(|n| format!("{}: {n}", ed.t().sent_again))}
            </p>
            <ul class="dead-list" data-testid="parked-list">
                {move || {
                    let list = parked.get();
                    if list.is_empty() {
                        return view! { <li class="empty">{move || ed.t().no_parked}</li> }.into_any();
                    }
                    list.into_iter().map(|p| {
                        let key = p.key.clone();
                        view! {
                            <li data-testid="parked-row">
                                <span class="chip">{p.summary.clone()}</span>
                                <bdi class="url">{format!("{} → {}", p.from, p.target)}</bdi>
                                <span class="err">{p.error.clone()}</span>
                                <time>{local_time(&p.at)}</time>
                                <button type="button" class="ghost small" on:click=move |_| {
                                    let key = key.clone();
                                    spawn_local(async move {
                                        if let Err(e) = api::retry_parked(c, &key).await { c.error.set(Some(e)); }
                                        reload.run(());
                                    });
                                }>{move || ed.t().retry}</button>
                            </li>
                        }
                    }).collect_view().into_any()
                }}
            </ul>
        </section>
    }
}

/// The contact centre as a whole: the time zone its supervisors' "today" follows,
/// and how long closed chats are kept.
#[component]
fn Centre(
    /// The editor.
    ed: Ed,
) -> impl IntoView {
    let (tz, days) = ed
        .get(|d| Some((d.time_zone.clone(), d.retention_days)))
        .unwrap_or_default();
    let tz_error = RwSignal::new(None::<String>);
    view! {
        <section class="panel admin-section" data-testid="centre" aria-labelledby="h-centre">
            <div class="section-head"><h2 id="h-centre">{move || ed.t().centre}</h2></div>
            <div class="row">
                <label class="fld wide tz"><span>{move || ed.t().centre_time_zone}</span>
                    <input type="text" prop:value=tz spellcheck="false" placeholder="Europe/Berlin" data-testid="centre-tz"
                        aria-invalid=move || tz_error.get().map(|_| "true")
                        on:input=move |e| {
                            let tz = event_target_value(&e).trim().to_string();
                            match shared::config::check_time_zone(&tz) {
                                Ok(()) => { tz_error.set(None); ed.set(|d| d.time_zone = tz); }
                                Err(m) => tz_error.set(Some(m)),
                            }
                        }/>
                    {move || tz_error.get().map(|e| view! { <span class="field-error" role="alert">{e}</span> })}
                </label>
                {number(ed, |t| t.retention, days, |d, v| d.retention_days = v)}
            </div>
        </section>
    }
}

/// A titled section with an "add" button.
fn section(
    ed: Ed,
    title: Label,
    testid: &'static str,
    add: impl Fn(&mut TenantConfig, &mut Vec<String>) + Copy + 'static,
    body: AnyView,
) -> impl IntoView {
    let heading = format!("h-{testid}");
    let labelled_by = heading.clone();
    view! {
        <section class="panel admin-section" data-testid=testid aria-labelledby=labelled_by>
            <div class="section-head">
                <h2 id=heading>{move || title(ed.t())}</h2>
                <button type="button" class="ghost small" data-testid=format!("add-{testid}")
                    on:click=move |_| ed.reshape(add)>{move || format!("+ {}", ed.t().add)}</button>
            </div>
            {body}
        </section>
    }
}

#[component]
fn Sites(
    /// The editor.
    ed: Ed,
) -> impl IntoView {
    let add = |d: &mut TenantConfig, _: &mut Vec<String>| {
        let n = d.sites.len() + 1;
        if let (Ok(key), Some(q)) = (SiteKey::new(format!("site-{n}")), d.queues.first()) {
            d.sites.push(SiteConfig {
                key,
                name: format!("Website {n}"),
                allowed_origins: vec![],
                queue: q.id.clone(),
                language: String::new(),
                accent: None,
                typical_reply_mins: None,
            });
        }
    };
    let row = move |i: usize| {
        let Some(s) = ed.get(|d| d.sites.get(i).cloned()) else {
            return ().into_any();
        };
        let key_now = move || {
            ed.draft.with(|d| {
                d.as_ref()
                    .and_then(|d| d.sites.get(i))
                    .map(|s| s.key.to_string())
                    .unwrap_or_default()
            })
        };
        let queue_ids = move || {
            ed.draft.with(|d| {
                d.as_ref()
                    .map(|d| {
                        d.queues
                            .iter()
                            .map(|q| q.id.to_string())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
        };
        let queue = s.queue.to_string();
        view! {
            <div class="row" data-testid="site-row">
                {id_field(ed, |t| t.key, s.key.to_string(), SiteKey::new, move |d, v| if let Some(x) = d.sites.get_mut(i) { x.key = v })}
                {text(ed, |t| t.name, s.name.clone(), move |d, v| if let Some(x) = d.sites.get_mut(i) { x.name = v })}
                <label class="fld wide"><span>{move || ed.t().origins}</span>
                    <textarea rows="2" placeholder=move || ed.t().origins_hint prop:value=s.allowed_origins.join("\n")
                        on:input=move |e| {
                            let v: Vec<String> = event_target_value(&e).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
                            ed.set(|d| if let Some(x) = d.sites.get_mut(i) { x.allowed_origins = v });
                        }></textarea>
                </label>
                <label class="fld"><span>{move || ed.c.t().queue}</span>
                    <select on:change=move |e| {
                        if let Ok(q) = QueueId::new(event_target_value(&e)) {
                            ed.set(|d| if let Some(x) = d.sites.get_mut(i) { x.queue = q });
                        }
                    }>
                        {move || queue_ids().into_iter().map(|q| view! { <option value=q.clone() selected=q == queue>{q.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <label class="fld"><span>{move || ed.t().accent}</span>
                    <input type="color" prop:value=s.accent.clone().unwrap_or_else(|| "#1f5eff".into())
                        on:input=move |e| { let v = event_target_value(&e); ed.set(|d| if let Some(x) = d.sites.get_mut(i) { x.accent = Some(v) }); }/>
                </label>
                <label class="fld"><span>{move || ed.t().language}</span>
                    <select on:change=move |e| { let v = event_target_value(&e); ed.set(|d| if let Some(x) = d.sites.get_mut(i) { x.language = v }); }>
                        <option value="" selected=s.language.is_empty()>{move || ed.t().browser_language}</option>
                        <option value="en" selected=s.language == "en">"English"</option>
                        <option value="de" selected=s.language == "de">"Deutsch"</option>
                    </select>
                </label>
                {remove_button(ed, s.key.to_string(), move |d, _| { if i < d.sites.len() { d.sites.remove(i); } })}
                {ed.problem_of("site", key_now)}
            </div>
        }
        .into_any()
    };
    section(
        ed,
        |t| t.sites,
        "sites",
        add,
        view! {
            <For each=rows(ed, |d| d.sites.len()) key=|k| *k children=move |(_, i)| row(i)/>
        }
        .into_any(),
    )
}

#[component]
fn Queues(
    /// The editor.
    ed: Ed,
) -> impl IntoView {
    let add = |d: &mut TenantConfig, _: &mut Vec<String>| {
        let n = d.queues.len() + 1;
        if let Ok(id) = QueueId::new(format!("queue-{n}")) {
            d.queues.push(QueueConfig {
                id,
                name: format!("Queue {n}"),
                offer_timeout_secs: shared::config::DEFAULT_OFFER_TIMEOUT_SECS,
                inactivity_timeout_secs: shared::config::DEFAULT_INACTIVITY_TIMEOUT_SECS,
                max_wait_secs: shared::config::DEFAULT_MAX_WAIT_SECS,
                max_queue_length: shared::config::DEFAULT_MAX_QUEUE_LENGTH,
                hours: Default::default(),
            });
        }
    };
    let row = move |i: usize| {
        let Some(q) = ed.get(|d| d.queues.get(i).cloned()) else {
            return ().into_any();
        };
        let id_now = move || {
            ed.draft.with(|d| {
                d.as_ref()
                    .and_then(|d| d.queues.get(i))
                    .map(|q| q.id.to_string())
                    .unwrap_or_default()
            })
        };
        view! {
            <div class="row" data-testid="queue-row">
                {id_field(ed, |t| t.id, q.id.to_string(), QueueId::new, move |d, v| if let Some(x) = d.queues.get_mut(i) { x.id = v })}
                {text(ed, |t| t.name, q.name.clone(), move |d, v| if let Some(x) = d.queues.get_mut(i) { x.name = v })}
                {number(ed, |t| t.offer_timeout, q.offer_timeout_secs, move |d, v| if let Some(x) = d.queues.get_mut(i) { x.offer_timeout_secs = v })}
                {number(ed, |t| t.inactivity_timeout, q.inactivity_timeout_secs, move |d, v| if let Some(x) = d.queues.get_mut(i) { x.inactivity_timeout_secs = v })}
                {number(ed, |t| t.max_wait, q.max_wait_secs, move |d, v| if let Some(x) = d.queues.get_mut(i) { x.max_wait_secs = v })}
                {number(ed, |t| t.max_queue, q.max_queue_length, move |d, v| if let Some(x) = d.queues.get_mut(i) { x.max_queue_length = v })}
                {remove_button(ed, q.id.to_string(), move |d, _| { if i < d.queues.len() { d.queues.remove(i); } })}
                <Hours ed=ed queue=i hours=q.hours.clone()/>
                {ed.problem_of("queue", id_now)}
            </div>
        }
        .into_any()
    };
    section(
        ed,
        |t| t.queues,
        "queues",
        add,
        view! {
            <For each=rows(ed, |d| d.queues.len()) key=|k| *k children=move |(_, i)| row(i)/>
        }
        .into_any(),
    )
}

/// Lifts a saved agent's sign-in lockout (after too many wrong passwords, theirs or
/// an attacker's); says what happened.
#[component]
fn Unlock(
    /// The editor.
    ed: Ed,
    /// The agent's id as saved.
    agent: String,
) -> impl IntoView {
    let said = RwSignal::new(None::<Result<(), String>>);
    let agent = StoredValue::new(agent);
    let click = move |_| {
        spawn_local(async move {
            let r = api::unlock_agent(ed.c, &agent.get_value()).await;
            said.set(Some(r));
        });
    };
    view! {
        <div class="unlock">
            <button type="button" class="link" data-testid="unlock" on:click=click>{move || ed.t().unlock}</button>
            <span role="status">{move || match said.get() {
                Some(Ok(())) => ed.t().unlocked.to_string(),
                Some(Err(e)) => e,
                None => String::new(),
            }}</span>
        </div>
    }
}

/// An agent's picture for the widget's header: uploaded at once (an image of at most
/// 256 KiB, checked by the service, whose refusal is shown here), applied to the draft,
/// saved with it.
#[component]
fn Picture(
    /// The editor.
    ed: Ed,
    /// The agent's index.
    agent: usize,
    /// Its picture id when the row was drawn.
    avatar: Option<String>,
) -> impl IntoView {
    let current = RwSignal::new(avatar);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let apply = move |id: Option<String>| {
        current.set(id.clone());
        ed.set(move |d| {
            if let Some(a) = d.agents.get_mut(agent) {
                a.avatar = id;
            }
        });
    };
    let on_file = move |e: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&e);
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        input.set_value("");
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match api::upload_avatar(ed.c, file).await {
                Ok(id) => apply(Some(id)),
                Err(m) => error.set(Some(m)),
            }
            busy.set(false);
        });
    };
    let src = move || {
        let tenant =
            ed.c.session
                .with(|s| s.as_ref().map(|s| s.tenant.clone()))?;
        current
            .get()
            .map(|id| shared::attachment::picture_path(&tenant, &id))
    };
    view! {
        <div class="fld picture" data-testid="picture">
            <span>{move || ed.t().picture}</span>
            <div class="pic-row">
                {move || src().map(|src| view! { <img class="pic" src=src alt="" width="36" height="36" data-testid="picture-img"/> })}
                <label class="ghost small file-btn" aria-busy=move || busy.get().then_some("true")>
                    {move || ed.t().upload_picture}
                    <input type="file" class="sr" accept="image/png,image/jpeg,image/webp,image/gif"
                        data-testid="picture-file" on:change=on_file/>
                </label>
                <Show when=move || current.get().is_some()>
                    <button type="button" class="link" on:click=move |_| apply(None)>{move || ed.t().remove_picture}</button>
                </Show>
            </div>
            {move || error.get().map(|e| view! { <span class="field-error" role="alert" data-testid="picture-error">{e}</span> })}
        </div>
    }
}

/// A queue's business hours: its time zone and one field per weekday, written as
/// people write them ("09:00-12:00, 13:00-17:00"); `shared::hours` reads them, and a
/// field it refuses is named beside the field and changes nothing.
#[component]
fn Hours(
    /// The editor.
    ed: Ed,
    /// The queue's index.
    queue: usize,
    /// Its hours when the row was drawn.
    hours: BusinessHours,
) -> impl IntoView {
    // Checks an edit on a copy of the queue's hours; applies it only if it holds.
    let apply = move |edit: &dyn Fn(&mut BusinessHours) -> Result<(), String>| {
        let checked = ed.get(|d| {
            d.queues.get(queue).map(|q| {
                let mut h = q.hours.clone();
                edit(&mut h).and_then(|()| h.validate()).map(|()| h)
            })
        });
        match checked {
            Some(Ok(h)) => {
                ed.set(move |d| {
                    if let Some(q) = d.queues.get_mut(queue) {
                        q.hours = h;
                    }
                });
                None
            }
            Some(Err(e)) => Some(e),
            None => None,
        }
    };
    let tz_error = RwSignal::new(None::<String>);
    let days = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let day_fields = days
        .into_iter()
        .enumerate()
        .map(|(n, day)| {
            let error = RwSignal::new(None::<String>);
            view! {
                <label class="fld day"><span>{move || ed.t().weekdays[n]}</span>
                    <input type="text" prop:value=hours.day_text(day) spellcheck="false" placeholder=move || ed.t().closed_day
                        data-testid="hours-day" aria-invalid=move || error.get().map(|_| "true")
                        on:input=move |e| {
                            let text = event_target_value(&e);
                            error.set(apply(&|h| h.set_day_text(day, &text)));
                        }/>
                    {move || error.get().map(|e| view! { <span class="field-error" role="alert">{e}</span> })}
                </label>
            }
        })
        .collect_view();
    view! {
        <details class="hours" data-testid="hours">
            <summary>{move || ed.t().hours}<span class="muted">{move || {
                let open = ed.draft.with(|d| {
                    d.as_ref()
                        .and_then(|d| d.queues.get(queue))
                        .is_some_and(|q| q.hours.windows.is_empty())
                });
                if open { format!(" · {}", ed.t().always_open) } else { String::new() }
            }}</span></summary>
            <p class="hint">{move || ed.t().hours_hint}</p>
            <div class="hours-grid">
                <label class="fld wide"><span>{move || ed.t().time_zone}</span>
                    <input type="text" prop:value=hours.time_zone.clone() spellcheck="false" placeholder="Europe/Berlin"
                        data-testid="hours-tz" aria-invalid=move || tz_error.get().map(|_| "true")
                        on:input=move |e| {
                            let tz = event_target_value(&e).trim().to_string();
                            tz_error.set(apply(&|h| { h.time_zone = tz.clone(); Ok(()) }));
                        }/>
                    {move || tz_error.get().map(|e| view! { <span class="field-error" role="alert">{e}</span> })}
                </label>
                {day_fields}
            </div>
        </details>
    }
}

#[component]
fn Agents(
    /// The editor.
    ed: Ed,
) -> impl IntoView {
    let add = |d: &mut TenantConfig, pw: &mut Vec<String>| {
        let n = d.agents.len() + 1;
        if let Ok(id) = AgentId::new(format!("agent-{n}")) {
            d.agents.push(AgentConfig {
                id,
                name: format!("Agent {n}"),
                capacity: shared::config::DEFAULT_CAPACITY,
                queues: d.queues.iter().map(|q| q.id.clone()).collect(),
                role: Role::Agent,
                avatar: None,
            });
            pw.push(String::new());
        }
    };
    let row = move |i: usize| {
        let Some(a) = ed.get(|d| d.agents.get(i).cloned()) else {
            return ().into_any();
        };
        let id_now = move || {
            ed.draft.with(|d| {
                d.as_ref()
                    .and_then(|d| d.agents.get(i))
                    .map(|a| a.id.to_string())
                    .unwrap_or_default()
            })
        };
        let queue_ids = move || {
            ed.draft.with(|d| {
                d.as_ref()
                    .map(|d| d.queues.iter().map(|q| q.id.clone()).collect::<Vec<_>>())
                    .unwrap_or_default()
            })
        };
        let serves = move |q: &QueueId| {
            ed.draft.with_untracked(|d| {
                d.as_ref()
                    .and_then(|d| d.agents.get(i))
                    .is_some_and(|a| a.queues.contains(q))
            })
        };
        let role = a.role;
        view! {
            <div class="row" data-testid="agent-row">
                {id_field(ed, |t| t.id, a.id.to_string(), AgentId::new, move |d, v| if let Some(x) = d.agents.get_mut(i) { x.id = v })}
                {text(ed, |t| t.name, a.name.clone(), move |d, v| if let Some(x) = d.agents.get_mut(i) { x.name = v })}
                {number(ed, |t| t.capacity, a.capacity, move |d, v| if let Some(x) = d.agents.get_mut(i) { x.capacity = v })}
                <label class="fld"><span>{move || ed.t().role}</span>
                    <select data-testid="role" on:change=move |e| {
                        let r = match event_target_value(&e).as_str() { "admin" => Role::Admin, "supervisor" => Role::Supervisor, _ => Role::Agent };
                        ed.set(|d| if let Some(x) = d.agents.get_mut(i) { x.role = r });
                    }>
                        <option value="agent" selected=role == Role::Agent>{move || ed.t().role_agent}</option>
                        <option value="supervisor" selected=role == Role::Supervisor>{move || ed.t().role_supervisor}</option>
                        <option value="admin" selected=role == Role::Admin>{move || ed.t().role_admin}</option>
                    </select>
                </label>
                <fieldset class="fld checks"><legend>{move || ed.t().queues}</legend>
                    {move || queue_ids().into_iter().map(|q| {
                        let on = serves(&q);
                        let label = q.to_string();
                        view! {
                            <label class="check"><input type="checkbox" prop:checked=on on:change=move |e| {
                                let checked = event_target_checked(&e);
                                let q = q.clone();
                                ed.set(|d| if let Some(x) = d.agents.get_mut(i) {
                                    x.queues.retain(|y| y != &q);
                                    if checked { x.queues.push(q); }
                                });
                            }/>{label}</label>
                        }
                    }).collect_view()}
                </fieldset>
                <label class="fld"><span>{move || ed.t().new_password}</span>
                    <input type="password" autocomplete="new-password" placeholder=move || ed.t().password_unchanged
                        prop:value=move || ed.passwords.with(|p| p.get(i).cloned().unwrap_or_default())
                        on:input=move |e| {
                            let v = event_target_value(&e);
                            ed.passwords.update(|p| if let Some(x) = p.get_mut(i) { *x = v });
                            ed.dirty.set(true);
                            ed.saved.set(false);
                        }/>
                </label>
                <Picture ed=ed agent=i avatar=a.avatar.clone()/>
                <Unlock ed=ed agent=a.id.to_string()/>
                {remove_button(ed, a.id.to_string(), move |d, pw| { if i < d.agents.len() { d.agents.remove(i); }
 if i < pw.len() { pw.remove(i); } })}
                {ed.problem_of("agent", id_now)}
            </div>
        }
        .into_any()
    };
    section(
        ed,
        |t| t.agents,
        "agents",
        add,
        view! {
            <For each=rows(ed, |d| d.agents.len()) key=|k| *k children=move |(_, i)| row(i)/>
        }
        .into_any(),
    )
}

fn reasons_of(d: &mut TenantConfig, idle: bool) -> &mut Vec<Reason> {
    if idle {
        &mut d.idle_reasons
    } else {
        &mut d.wrap_up_reasons
    }
}

#[component]
fn Reasons(
    /// The editor.
    ed: Ed,
    /// Idle reasons (true) or wrap-up reasons.
    idle: bool,
) -> impl IntoView {
    let add = move |d: &mut TenantConfig, _: &mut Vec<String>| {
        let list = reasons_of(d, idle);
        let n = list.len() + 1;
        if let Ok(id) = ReasonId::new(format!("reason-{n}")) {
            list.push(Reason {
                id,
                label: format!("Reason {n}"),
                label_de: String::new(),
            });
        }
    };
    let row = move |i: usize| {
        let Some(r) = ed.get(|d| {
            if idle {
                d.idle_reasons.get(i).cloned()
            } else {
                d.wrap_up_reasons.get(i).cloned()
            }
        }) else {
            return ().into_any();
        };
        view! {
            <div class="row" data-testid="reason-row">
                {id_field(ed, |t| t.id, r.id.to_string(), ReasonId::new, move |d, v| if let Some(x) = reasons_of(d, idle).get_mut(i) { x.id = v })}
                {text(ed, |t| t.label_en, r.label.clone(), move |d, v| if let Some(x) = reasons_of(d, idle).get_mut(i) { x.label = v })}
                {text(ed, |t| t.label_de, r.label_de.clone(), move |d, v| if let Some(x) = reasons_of(d, idle).get_mut(i) { x.label_de = v })}
                {remove_button(ed, r.id.to_string(), move |d, _| { let l = reasons_of(d, idle); if i < l.len() { l.remove(i); } })}
            </div>
        }
        .into_any()
    };
    let (title, testid): (Label, &'static str) = if idle {
        (|t| t.idle_reasons, "idle-reasons")
    } else {
        (|t| t.wrap_up_reasons, "wrap-up-reasons")
    };
    section(ed, title, testid, add, view! {
        <For each=rows(ed, move |d| if idle { d.idle_reasons.len() } else { d.wrap_up_reasons.len() }) key=|k| *k children=move |(_, i)| row(i)/>
    }.into_any())
}

#[component]
fn Templates(
    /// The editor.
    ed: Ed,
) -> impl IntoView {
    let add = |d: &mut TenantConfig, _: &mut Vec<String>| {
        let n = d.templates.len() + 1;
        if let Ok(id) = TemplateId::new(format!("template-{n}")) {
            d.templates.push(TemplateConfig {
                id,
                name: format!("Template {n}"),
                text: "Hello <customer_name>!".into(),
            });
        }
    };
    let params = shared::template::PARAMETERS
        .iter()
        .map(|p| format!("<{p}>"))
        .collect::<Vec<_>>()
        .join(", ");
    let row = move |i: usize| {
        let Some(t) = ed.get(|d| d.templates.get(i).cloned()) else {
            return ().into_any();
        };
        let id_now = move || {
            ed.draft.with(|d| {
                d.as_ref()
                    .and_then(|d| d.templates.get(i))
                    .map(|t| t.id.to_string())
                    .unwrap_or_default()
            })
        };
        view! {
            <div class="row" data-testid="template-row">
                {id_field(ed, |t| t.id, t.id.to_string(), TemplateId::new, move |d, v| if let Some(x) = d.templates.get_mut(i) { x.id = v })}
                {text(ed, |t| t.name, t.name.clone(), move |d, v| if let Some(x) = d.templates.get_mut(i) { x.name = v })}
                <label class="fld wide"><span>{move || ed.t().template_text}</span>
                    <textarea rows="2" data-testid="template-text" prop:value=t.text.clone()
                        on:input=move |e| { let v = event_target_value(&e); ed.set(|d| if let Some(x) = d.templates.get_mut(i) { x.text = v }); }></textarea>
                </label>
                {remove_button(ed, t.id.to_string(), move |d, _| { if i < d.templates.len() { d.templates.remove(i); } })}
                {ed.problem_of("template", id_now)}
            </div>
        }
        .into_any()
    };
    section(
        ed,
        |t| t.templates,
        "templates",
        add,
        view! {
            <p class="hint">{move || ed.t().template_hint}": "{params.clone()}</p>
            <For each=rows(ed, |d| d.templates.len()) key=|k| *k children=move |(_, i)| row(i)/>
        }
        .into_any(),
    )
}

#[component]
fn Webhooks(
    /// The editor.
    ed: Ed,
    /// Failed deliveries.
    dead: RwSignal<Vec<DeadLetter>>,
    /// Reloads the failed deliveries.
    reload: Callback<()>,
) -> impl IntoView {
    let c = ed.c;
    let add = |d: &mut TenantConfig, _: &mut Vec<String>| {
        d.webhooks.push(WebhookConfig {
            url: "https://".into(),
            events: vec![],
        });
    };
    let events = WebhookEvent::ALL;
    let row = move |i: usize| {
        let Some(w) = ed.get(|d| d.webhooks.get(i).cloned()) else {
            return ().into_any();
        };
        view! {
            <div class="row" data-testid="webhook-row">
                <label class="fld wide"><span>{move || ed.t().url}</span>
                    <input type="url" prop:value=w.url.clone() spellcheck="false"
                        on:input=move |e| { let v = event_target_value(&e); ed.set(|d| if let Some(x) = d.webhooks.get_mut(i) { x.url = v }); }/>
                </label>
                <fieldset class="fld checks"><legend>{move || ed.t().events}</legend>
                    {events.into_iter().map(|ev| {
                        let on = w.wants(ev);
                        view! {
                            <label class="check"><input type="checkbox" prop:checked=on on:change=move |e| {
                                let checked = event_target_checked(&e);
                                ed.set(|d| if let Some(x) = d.webhooks.get_mut(i) {
                                    let mut now: Vec<WebhookEvent> = events.into_iter().filter(|k| x.wants(*k)).collect();
                                    now.retain(|k| *k != ev);
                                    if checked { now.push(ev); }
                                    now.sort();
                                    x.events = if now.len() == events.len() { vec![] } else { now };
                                });
                            }/>{ev.as_str()}</label>
                        }
                    }).collect_view()}
                </fieldset>
                {remove_button(ed, w.url.clone(), move |d, _| { if i < d.webhooks.len() { d.webhooks.remove(i); } })}
                {ed.problem_of("webhook", move || (i + 1).to_string())}
            </div>
        }
        .into_any()
    };
    section(ed, |t| t.webhooks, "webhooks", add, view! {
        <For each=rows(ed, |d| d.webhooks.len()) key=|k| *k children=move |(_, i)| row(i)/>
        <label class="fld wide"><span>{move || ed.t().webhook_secret}</span>
            <input type="password" autocomplete="off" placeholder=move || ed.t().secret_unchanged prop:value=move || ed.secret.get()
                on:input=move |e| { ed.secret.set(event_target_value(&e)); ed.dirty.set(true); ed.saved.set(false); }/>
        </label>
        <h3>{move || ed.t().dead_letters}</h3>
        <ul class="dead-list" data-testid="dead-letters">
            {move || {
                let list = dead.get();
                if list.is_empty() {
                    return view! { <li class="empty">{move || ed.t().no_dead_letters}</li> }.into_any();
                }
                list.into_iter().map(|d| {
                    let id = d.job.id.clone();
                    view! {
                        <li>
                            <span class="chip">{d.job.event.as_str()}</span>
                            <bdi class="url">{d.job.url.clone()}</bdi>
                            <span class="err">{d.job.last_error.clone().unwrap_or_default()}</span>
                            <time>{local_time(&d.at)}</time>
                            <button type="button" class="ghost small" on:click=move |_| {
                                let id = id.clone();
                                spawn_local(async move {
                                    if let Err(e) = api::retry_dead(c, &id).await { c.error.set(Some(e)); }
                                    reload.run(());
                                });
                            }>{move || ed.t().retry}</button>
                        </li>
                    }
                }).collect_view().into_any()
            }}
        </ul>
    }.into_any())
}
