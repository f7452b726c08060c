//! The supervisor screen: the day's figures, queues, agents and live chats as the
//! tenant pushes them (no polling), a read-only look into any live chat, and
//! signing an agent out. It renders the view; the tenant decides who may see it.

use crate::api;
use crate::i18n::Words as _;
use crate::i18n_centre::CentreWords as _;
use crate::state::{mmss, Console, Observed, Screen};
use leptos::prelude::*;
use shared::agent::AgentState;
use shared::engine::{AgentLive, LiveChat, QueueLive, SupervisorView};
use shared::protocol::AgentFrame;

fn secs(s: Option<i64>) -> String {
    s.map_or_else(|| "–".into(), |s| mmss(s as f64 * 1000.0))
}

/// The supervisor screen.
#[component]
pub fn SupervisorScreen() -> impl IntoView {
    let c = expect_context::<Console>();
    // Redrawn on every pushed view and on a change of language.
    let view_or_loading = move || match (c.lang.get(), c.supervisor.get()).1 {
        None => {
            view! { <p class="placeholder" role="status">{c.lang.get().c().loading}</p> }.into_any()
        }
        Some(v) => view! { <Live v=v/> }.into_any(),
    };
    view! {
        <div class="screen supervisor" class:observing=move || c.observed.with(|o| o.is_some()) data-testid="supervisor">
            {view_or_loading}
            <ObservedChat/>
        </div>
    }
}

/// The figures of one pushed view.
#[component]
fn Live(
    /// The view as the tenant last pushed it.
    v: SupervisorView,
) -> impl IntoView {
    let c = expect_context::<Console>();
    let t = c.lang.get_untracked().c();
    let waiting: u32 = v.queues.iter().map(|q| q.waiting).sum();
    let rating = v.today.rating_average_tenths().map_or_else(
        || "–".to_string(),
        |r| format!("{}.{} ★ ({})", r / 10, r % 10, v.today.ratings),
    );
    let cards = [
        (t.waiting_now, waiting.to_string(), "waiting"),
        (t.avg_wait, secs(v.today.average_wait_secs()), "avg-wait"),
        (
            t.avg_handle,
            secs(v.today.average_handle_secs()),
            "avg-handle",
        ),
        (t.rating_today, rating, "rating"),
        (t.closed_today, v.today.chats.to_string(), "closed"),
    ];
    // Parked updates between the routing and its chats: said at once, with the way
    // to the admin screen's list for those who administer.
    let undelivered = (v.undelivered > 0).then(|| {
        let admin = c.role.get_untracked().administers();
        view! {
            <p class="alert-banner" role="status" data-testid="undelivered">
                <strong>{format!("{}: {}", t.parked, v.undelivered)}</strong>
                <span>{t.undelivered_hint}</span>
                {admin.then(|| view! {
                    <button type="button" class="ghost small" on:click=move |_| { c.reveal.set(Some("parked")); c.screen.set(Screen::Admin); }>{t.open_admin}</button>
                })}
            </p>
        }
    });
    view! {
        {undelivered}
        <section class="cards" aria-label=t.live>
            {cards.into_iter().map(|(label, value, id)| view! {
                <div class="card" data-testid=format!("card-{id}")>
                    <span class="card-label">{label}</span>
                    <strong class="card-value">{value}</strong>
                </div>
            }).collect_view()}
        </section>
        <div class="grid2">
            <QueueTable queues=v.queues.clone()/>
            <AgentTable agents=v.agents.clone()/>
        </div>
        <ChatTable chats=v.chats.clone() queues=v.queues.clone()/>
    }
}

/// Queues: waiting, longest wait, offers out, open and closed today.
#[component]
fn QueueTable(
    /// Queues of the pushed view.
    queues: Vec<QueueLive>,
) -> impl IntoView {
    let c = expect_context::<Console>();
    let t = c.lang.get_untracked().c();
    view! {
        <section class="panel" tabindex="0" aria-label=t.queue_table>
            <table data-testid="queue-table">
                <caption>{t.queue_table}</caption>
                <thead><tr>
                    <th scope="col">{c.t().queue}</th>
                    <th scope="col" class="num">{c.t().waiting}</th>
                    <th scope="col" class="num">{t.longest_wait}</th>
                    <th scope="col" class="num">{t.offers}</th>
                    <th scope="col" class="num">{t.open}</th>
                    <th scope="col" class="num">{t.closed_today}</th>
                </tr></thead>
                <tbody>
                    {queues.into_iter().map(|q| view! {
                        <tr data-testid=format!("queue-{}", q.id)>
                            <th scope="row"><bdi>{q.name}</bdi></th>
                            <td class="num" data-testid="waiting">{q.waiting}</td>
                            <td class="num">{if q.waiting > 0 { mmss(q.longest_wait_secs as f64 * 1000.0) } else { "–".into() }}</td>
                            <td class="num" data-testid="offers">{q.offers_pending}</td>
                            <td class="num" data-testid="open">{q.open}</td>
                            <td class="num" data-testid="closed">{q.closed_today}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

fn state_class(s: &AgentState) -> &'static str {
    match s {
        AgentState::Available => "dot available",
        AgentState::Rona => "dot rona",
        AgentState::SignedOut => "dot out",
        AgentState::Idle { .. } => "dot idle",
    }
}

/// The state as the console names it, with the idle reason's label.
fn state_label(c: Console, s: &AgentState) -> String {
    let lang = c.lang.get_untracked();
    match s {
        AgentState::Idle { reason: Some(r) } => {
            let label = c.idle_reasons.with_untracked(|l| {
                l.iter().find(|x| &x.id == r).map(|x| {
                    if lang == crate::i18n::Lang::De && !x.label_de.is_empty() {
                        x.label_de.clone()
                    } else {
                        x.label.clone()
                    }
                })
            });
            format!(
                "{} · {}",
                lang.state(s),
                label.unwrap_or_else(|| r.to_string())
            )
        }
        _ => lang.state(s).to_string(),
    }
}

/// Agents: state and since when, chats of capacity, wrap-ups, RONAs; sign-out.
#[component]
fn AgentTable(
    /// Agents of the pushed view.
    agents: Vec<AgentLive>,
) -> impl IntoView {
    let c = expect_context::<Console>();
    let t = c.lang.get_untracked().c();
    view! {
        <section class="panel" tabindex="0" aria-label=t.agent_table>
            <table data-testid="agent-table">
                <caption>{t.agent_table}</caption>
                <thead><tr>
                    <th scope="col">{c.t().agent_label}</th>
                    <th scope="col">{t.state}</th>
                    <th scope="col" class="num">{t.since}</th>
                    <th scope="col" class="num">{t.chats_cap}</th>
                    <th scope="col" class="num">{t.wrap_ups}</th>
                    <th scope="col" class="num">{t.ronas_today}</th>
                    <th scope="col"><span class="sr">{t.actions}</span></th>
                </tr></thead>
                <tbody>
                    {agents.into_iter().map(|a| {
                        let since = a.since.map(|s| s.timestamp_millis() as f64);
                        let signed_in = a.state.is_signed_in();
                        let id = a.id.clone();
                        let label = format!("{} · {}", t.sign_out_agent, a.name);
                        view! {
                            <tr data-testid=format!("agent-{}", a.id)>
                                <th scope="row"><bdi>{a.name.clone()}</bdi></th>
                                <td><span class=state_class(&a.state) aria-hidden="true"></span><span data-testid="state">{state_label(c, &a.state)}</span></td>
                                <td class="num">{move || since.filter(|_| signed_in).map_or_else(|| "–".into(), |s| mmss(c.now_ms.get() - s))}</td>
                                <td class="num" data-testid="chats">{format!("{}/{}", a.chats, a.capacity)}</td>
                                <td class="num">{a.wrap_ups}</td>
                                <td class="num" data-testid="ronas">{a.ronas_today}</td>
                                <td>
                                    <Show when=move || signed_in>
                                        <button type="button" class="ghost small" aria-label=label.clone()
                                            data-testid="sign-out-agent"
                                            on:click={let id = id.clone(); move |_| api::send(c, AgentFrame::SignOutAgent { agent: id.clone() })}>
                                            {t.sign_out_agent}
                                        </button>
                                    </Show>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// Live chats, each with a "read along" button.
#[component]
fn ChatTable(
    /// Live chats of the pushed view.
    chats: Vec<LiveChat>,
    /// Queues of the pushed view (for their names).
    queues: Vec<QueueLive>,
) -> impl IntoView {
    let queue_name = move |id: &shared::ids::QueueId| {
        queues
            .iter()
            .find(|q| &q.id == id)
            .map_or_else(|| id.to_string(), |q| q.name.clone())
    };
    let c = expect_context::<Console>();
    let t = c.lang.get_untracked().c();
    let place = move |p: &str| match p {
        "queued" => t.place_queued,
        "offered" => t.place_offered,
        "active" => t.place_active,
        _ => t.place_ended,
    };
    if chats.is_empty() {
        return view! {
            <section class="panel"><h2 class="panel-title">{t.live_chats}</h2><p class="empty">{t.no_live_chats}</p></section>
        }
        .into_any();
    }
    view! {
        <section class="panel" tabindex="0" aria-label=t.live_chats>
            <table data-testid="chat-table">
                <caption>{t.live_chats}</caption>
                <thead><tr>
                    <th scope="col">{c.t().customer}</th>
                    <th scope="col">{c.t().queue}</th>
                    <th scope="col">{t.state}</th>
                    <th scope="col">{t.agents}</th>
                    <th scope="col" class="num">{t.started}</th>
                    <th scope="col"><span class="sr">{t.actions}</span></th>
                </tr></thead>
                <tbody>
                    {chats.into_iter().map(|ch| {
                        let id = ch.id.clone();
                        let name = ch.customer_name.clone();
                        let started = ch.created_at.timestamp_millis() as f64;
                        let label = format!("{} · {}", t.read_along, ch.customer_name);
                        view! {
                            <tr data-testid="live-chat">
                                <th scope="row"><bdi>{ch.customer_name.clone()}</bdi></th>
                                <td><bdi>{queue_name(&ch.queue)}</bdi></td>
                                <td data-testid="place">{place(&ch.place)}</td>
                                <td>{ch.agents.iter().map(|a| view! { <bdi class="chip">{a.clone()}</bdi> }).collect_view()}</td>
                                <td class="num">{move || mmss(c.now_ms.get() - started)}</td>
                                <td><button type="button" class="ghost small" aria-label=label data-testid="read-along"
                                    on:click=move |_| {
                                        c.observed.set(Some(Observed { conversation: id.clone(), customer_name: name.clone(), messages: vec![], online: false }));
                                        api::send(c, AgentFrame::Observe { conversation: id.clone() });
                                    }>{t.read_along}</button></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}

/// The chat a supervisor reads along, read-only, in a side panel.
#[component]
fn ObservedChat() -> impl IntoView {
    let c = expect_context::<Console>();
    let close = move || {
        api::close_observer();
        c.observed.set(None);
    };
    view! {
        <Show when=move || c.observed.get().is_some()>
            <aside class="observer" data-testid="observer" aria-labelledby="observer-title"
                on:keydown=move |e| if e.key() == "Escape" { close() }>
                <header>
                    <h2 id="observer-title"><bdi>{move || c.observed.get().map(|o| o.customer_name).unwrap_or_default()}</bdi></h2>
                    <span class="readonly">{move || c.lang.get().c().read_only}</span>
                    <button type="button" class="ghost small" data-testid="close-observer" on:click=move |_| close()>{move || c.t().close}</button>
                </header>
                <div class="thread" role="log" tabindex="0" aria-label=move || c.t().messages_label>
                    <ol>
                        {move || c.observed.get().map(|o| o.messages.into_iter().map(|m| crate::pane::message_row(c, m, String::new(), None)).collect_view())}
                    </ol>
                </div>
            </aside>
        </Show>
    }
}
