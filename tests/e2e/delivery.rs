//! Scenarios of the data path: one hop per message, decisions that cross objects
//! arrive exactly once (failed deliveries, a kill between deciding and delivering),
//! agents who lose their chat socket lose nothing, a flood of starts leaves the
//! tenant working, and the bounds (maximum wait) hold.

use super::*;
use std::time::Instant;

/// Texts and notes of a conversation's transcript, via the visitor's token.
fn transcript(ctx: &Ctx, v: &Visitor) -> Vec<Value> {
    let tr = super::transcript(ctx, &v.conv, &v.token);
    assert_eq!(tr.status, 200, "{:?}", tr.body);
    tr.body["messages"].as_array().cloned().unwrap_or_default()
}

fn notes(msgs: &[Value], note: &str) -> usize {
    msgs.iter().filter(|m| m["note"]["note"] == note).count()
}

/// Waits for the "joined" note on a visitor's socket; the highest sequence number it
/// has seen then.
fn joined_seq(sock: &mut Socket) -> u64 {
    sock.wait_for("joined note", T, |f| {
        ty(f) == "message" && f["message"]["note"]["note"] == "joined"
    });
    sock.seen
        .iter()
        .filter_map(|f| f["message"]["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

/// A chat on `{tenant}-site` that the agent `id` (Available) was offered and accepted:
/// the agent, the visitor and the conversation id.
fn accepted_chat(ctx: &Ctx, tenant: &str, id: &str, name: &str) -> (Agent, Visitor, String) {
    let mut a = agent(ctx, tenant, id);
    a.available();
    let v = visitor(ctx, &format!("{tenant}-site"), name, "hi");
    let c = a.wait_offer();
    a.accept(&c);
    (a, v, c)
}

/// Runs on a server started with `TEST_FAIL_DELIVERIES=3`: every object's first
/// three deliveries to another object fail. Every decision still arrives, once.
pub fn failed_deliveries(ctx: &Ctx) {
    make_tenant(ctx, "t-fail", 30, 600, &[("f", 3)]);
    let mut a = agent(ctx, "t-fail", "f");
    a.available();
    let mut v = visitor(ctx, "t-fail-site", "Flaky", "hello");
    let c = a.wait_offer();
    a.accept(&c);
    // The tenant's first deliveries to this conversation failed; its alarm retries.
    v.sock.wait_for("queued note (retried)", T, |f| {
        ty(f) == "message" && f["message"]["note"]["note"] == "queued"
    });
    v.sock.wait_for("joined note (retried)", T, |f| {
        ty(f) == "message" && f["message"]["note"]["note"] == "joined"
    });
    v.sock.wait_for("active status (retried)", T, |f| {
        ty(f) == "status" && f["status"]["status"] == "active"
    });
    // Messages never depend on the tenant: they flow at once.
    v.say("f1", "are you there?");
    a.chat(&c).wait_for("visitor message", T, |f| {
        ty(f) == "message" && f["message"]["text"] == "are you there?"
    });
    a.say(&c, "f2", "yes");
    v.wait_text("yes");
    // The customer ends: the conversation's first reports to the tenant fail too.
    v.sock.send(json!({ "type": "end" }));
    a.sock.wait_for("wrap-up after the retried report", T, |f| {
        ev(f) == "wrap_up_required" && f["event"]["conversation"] == c.as_str()
    });
    v.sock.wait_for("ended status", T, |f| {
        ty(f) == "status" && f["status"]["status"] == "ended"
    });
    a.send(json!({ "type": "wrap_up", "conversation": c, "reason": "solved", "next": { "state": "available" } }));
    a.sock
        .wait_for("wrap-up done", T, |f| ev(f) == "wrap_up_done");
    // Exactly once: one note of each kind, in order, sequence numbers 1..n.
    let msgs = transcript(ctx, &v);
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m["seq"].as_u64(), Some(i as u64 + 1), "{msgs:?}");
    }
    for note in ["queued", "joined", "ended"] {
        assert_eq!(notes(&msgs, note), 1, "{note} once: {msgs:?}");
    }
    assert!(
        a.sock
            .seen
            .iter()
            .filter(|f| ev(f) == "wrap_up_required")
            .count()
            == 1,
        "the end was applied once"
    );
}

/// An accepted chat of `tenant` (agent `id`, visitor `name`); then `wrangler dev`
/// restarts with `fault` set (and starts unlimited) and the agent ends the chat: the
/// deciding object stores it and tells the agent at once. The agent, the visitor, the
/// conversation and the visitor's last sequence number before the end.
fn chat_ended_under_fault(
    server: &mut Server,
    ctx: &Ctx,
    (tenant, id, name): (&str, &str, &str),
    fault: (&str, &str),
) -> (Agent, Visitor, String, u64) {
    let (a, mut v, c) = accepted_chat(ctx, tenant, id, name);
    let last = joined_seq(&mut v.sock);
    server.restart_with(&[("RATE_START_PER_MINUTE", "100000"), fault]);
    let mut sock = agent_ws(ctx, &a.token);
    sock.send(json!({ "type": "end", "conversation": c }));
    sock.wait_for("wrap-up required", T, |f| {
        ev(f) == "wrap_up_required" && f["event"]["conversation"] == c.as_str()
    });
    (a, v, c, last)
}

/// Kill `wrangler dev` between a decision and its delivery (every delivery fails
/// until the kill), restart it with deliveries working: the decision arrives, once.
pub fn kill_between_decision_and_delivery(server: &mut Server, ctx: &Ctx) {
    make_tenant(ctx, "t-kill", 30, 600, &[("k", 3)]);
    // Every delivery between objects fails from the restart on; the agent ends the chat.
    let (_a, v, _c, last) = chat_ended_under_fault(
        server,
        ctx,
        ("t-kill", "k", "Vera"),
        ("TEST_FAIL_DELIVERIES", "1000000"),
    );
    // Killed before the "ended" note could reach the conversation.
    server.restart_with(&[("RATE_START_PER_MINUTE", "100000")]);
    let mut vs = visitor_ws(ctx, &v.conv, &v.token, last);
    vs.wait_for("ended note after the restart", T, |f| {
        ty(f) == "message" && f["message"]["note"]["note"] == "ended"
    });
    let v = Visitor {
        conv: v.conv,
        token: v.token,
        sock: vs,
    };
    assert_eq!(notes(&transcript(ctx, &v), "ended"), 1);
}

/// Polls `f` until it gives a value, within [`T`]; `what` names the wait.
fn poll_until<V>(what: &str, mut f: impl FnMut() -> Option<V>) -> V {
    let deadline = Instant::now() + T;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {T:?}");
        // Poll pacing (the event is the row showing up, checked above).
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reconnects the visitor of `conv` after `last` and waits for the "ended" note.
fn ended_note_arrives(ctx: &Ctx, conv: &str, token: &str, last: u64, what: &str) -> Socket {
    let mut s = visitor_ws(ctx, conv, token, last);
    s.wait_for(what, T, |f| {
        ty(f) == "message" && f["message"]["note"]["note"] == "ended"
    });
    s
}

/// The `delivery.parked` webhook request about `key` (signed, naming what was
/// parked); requests about other parked deliveries may come first.
fn parked_hook(rx: &super::centre::Receiver, key: &str, conversation: &str) -> Value {
    let deadline = Instant::now() + T;
    let mut other = vec![];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let hit = rx.next("/parked", left, &mut other);
        assert_eq!(hit.headers["x-switchboard-event"], "delivery.parked");
        super::centre::check_signature(&hit);
        let body: Value = serde_json::from_str(&hit.body).expect("JSON body");
        assert_eq!(body["event"], "delivery.parked", "{body}");
        assert_eq!(body["tenant"], "t-park", "{body}");
        if body["parked"]["key"] == key {
            assert_eq!(body["conversation"], conversation, "{body}");
            return body;
        }
    }
}

/// A delivery the receiving conversation refuses for good is parked, not lost: the
/// admin API lists it (what it carries, why), a `delivery.parked` webhook tells the
/// operator, it stays parked across a restart, and a retry delivers it once. Runs
/// after the kill scenario, on the same server.
pub fn parked_delivery(server: &mut Server, ctx: &Ctx) {
    let rx = super::centre::Receiver::start(0);
    let hooks = json!([
        { "url": rx.url("/parked"), "events": ["delivery.parked"] },
        { "url": rx.url("/closed"), "events": ["conversation.closed", "message.left"] }
    ]);
    make_tenant_with(ctx, "t-park", 30, 600, &[("p", 3), ("ps", 1)], |cfg| {
        cfg["config"]["webhooks"] = hooks;
        cfg["webhook_secret"] = json!(super::centre::HOOK_SECRET);
        cfg["config"]["agents"][1]["role"] = json!("admin");
    });
    // A supervisor signed in now sees a count of parked updates that passes `ok`.
    let supervisor_sees = |ok: &dyn Fn(u64) -> bool, what: &str| {
        let mut sv = agent(ctx, "t-park", "ps");
        sv.send(json!({ "type": "supervise" }));
        sv.sock.wait_for(what, T, |f| {
            ty(f) == "supervisor" && f["view"]["undelivered"].as_u64().is_some_and(ok)
        });
    };
    // Every delivery between objects is refused for good from the restart on; the
    // agent ends.
    let (a, v, c, last) = chat_ended_under_fault(
        server,
        ctx,
        ("t-park", "p", "Paula"),
        ("TEST_REFUSE_DELIVERIES", "1000000"),
    );
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let list_url = format!("{}/api/v1/admin/tenants/t-park/deliveries/parked", ctx.base);
    // The parked deliveries whose `field` is `value`, oldest first.
    let listed = |field: &str, value: &str| -> Vec<Value> {
        let r = http("GET", &list_url, None, &auth);
        assert_eq!(r.status, 200, "{:?}", r.body);
        let mut items: Vec<Value> = r.body["items"]
            .as_array()
            .map(|l| l.iter().filter(|i| i[field] == value).cloned().collect())
            .unwrap_or_default();
        items.reverse();
        items
    };
    let parked = || listed("target", &c);
    // The admin sends one again (its key's ':' percent-encoded, as a browser does).
    let retry = |item: &Value| {
        let key = item["key"].as_str().expect("key").replace(':', "%3A");
        http("POST", &format!("{list_url}/{key}/retry"), None, &auth)
    };
    let ended = |items: &[Value]| {
        items
            .iter()
            .find(|i| {
                i["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("note ended"))
            })
            .cloned()
    };
    // The refusal is answered right after the decision: wait for the row to show.
    let item = poll_until(&format!("a parked delivery of the end for {c}"), || {
        ended(&parked())
    });
    assert!(
        item["error"]
            .as_str()
            .is_some_and(|s| s.contains("refused")),
        "{item}"
    );
    assert_eq!(item["attempts"], 1, "{item}");
    let key = item["key"].as_str().expect("key");
    let hook = parked_hook(&rx, key, &c);
    assert_eq!(hook["parked"]["summary"], item["summary"], "{hook}");
    assert_eq!(hook["parked"]["error"], item["error"], "{hook}");
    supervisor_sees(&|n| n >= 1, "the supervisor's count of parked updates");
    // The same in the console: the banner, its way to the list, axe.
    super::browser_script(ctx, "undelivered.mjs", &["t-park", "ps", PW]);
    // Deliveries work again; a parked row is not retried by itself.
    server.restart_with(&[("RATE_START_PER_MINUTE", "100000")]);
    let items = parked();
    assert!(
        ended(&items).is_some(),
        "still parked after a restart: {items:?}"
    );
    let msgs = super::transcript(ctx, &v.conv, &v.token).body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(notes(&msgs, "ended"), 0, "not delivered while parked");
    // The admin sends them all again at once, oldest first.
    let r = http("POST", &format!("{list_url}/retry"), None, &auth);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["retried"], items.len(), "{:?}", r.body);
    assert_eq!(r.body["failed"], json!([]), "{:?}", r.body);
    let vs = ended_note_arrives(ctx, &v.conv, &v.token, last, "ended note after the retry");
    assert!(parked().is_empty(), "no longer parked");
    supervisor_sees(&|n| n == 0, "no parked updates left for the supervisor");
    let again = retry(&item);
    assert_eq!(again.status, 404, "{:?}", again.body);
    assert_eq!(again.body["error"], "unknown_delivery");
    let v = Visitor {
        conv: v.conv,
        token: v.token,
        sock: vs,
    };
    assert_eq!(notes(&transcript(ctx, &v), "ended"), 1, "delivered once");

    // The other direction: a conversation's report that the tenant refuses is parked
    // in the conversation, which tells the tenant; the admin's list shows it and a
    // retry has the conversation send it again.
    // (The agent's socket closed with the restart: a new one.)
    let mut a2 = agent_ws(ctx, &a.token);
    a2.send(json!({ "type": "wrap_up", "conversation": c, "reason": "solved", "next": { "state": "available" } }));
    a2.wait_for("wrap-up done", T, |f| ev(f) == "wrap_up_done");
    let v2 = visitor(ctx, "t-park-site", "Piet", "hello again");
    let o = a2.wait_for("second offer", T, |f| ty(f) == "offer");
    let c2 = o["offer"]["conversation"]
        .as_str()
        .expect("conv")
        .to_owned();
    a2.send(json!({ "type": "accept", "conversation": c2 }));
    let mut vs2 = v2.sock;
    let last2 = joined_seq(&mut vs2);
    // Each object's first delivery is refused: the conversation's report of the end.
    server.restart_with(&[
        ("RATE_START_PER_MINUTE", "100000"),
        ("TEST_REFUSE_DELIVERIES", "1"),
    ]);
    let mut vs2 = visitor_ws(ctx, &v2.conv, &v2.token, last2);
    vs2.send(json!({ "type": "end" }));
    let from_c2 = || listed("from", &c2);
    let item = poll_until(&format!("a parked report from {c2}"), || {
        from_c2().into_iter().next()
    });
    assert_eq!(item["summary"], "customer ended", "{item}");
    assert_eq!(item["target"], "routing", "{item}");
    let hook = parked_hook(&rx, item["key"].as_str().expect("key"), &c2);
    assert_eq!(hook["parked"]["from"], c2.as_str(), "{hook}");
    assert!(
        item["error"]
            .as_str()
            .is_some_and(|s| s.contains("refused")),
        "{item}"
    );
    server.restart_with(&[("RATE_START_PER_MINUTE", "100000")]);
    let r = retry(&item);
    assert_eq!(r.status, 200, "{:?}", r.body);
    ended_note_arrives(
        ctx,
        &v2.conv,
        &v2.token,
        last2,
        "ended note after the report was sent again",
    );
    assert!(from_c2().is_empty(), "no longer listed");
}

/// A conversation's report to its tenant is retried until the tenant takes it, while
/// the tenant's own rows give up after the (here shortened) day of attempts and are
/// parked for its admins. Runs on the second server, restarted with
/// `TEST_OUTBOX_MAX_ATTEMPTS=2` and every object's first three deliveries failing.
pub fn reports_retried_until_taken(server: &mut Server, ctx: &Ctx) {
    make_tenant(ctx, "t-long", 30, 600, &[("l", 3)]);
    let (a, mut v, c) = accepted_chat(ctx, "t-long", "l", "Lena");
    let last = joined_seq(&mut v.sock);
    server.restart_with(&[
        ("RATE_START_PER_MINUTE", "100000"),
        ("TEST_OUTBOX_MAX_ATTEMPTS", "2"),
        ("TEST_FAIL_DELIVERIES", "3"),
    ]);
    let mut ag = agent_ws(ctx, &a.token);
    let mut vs = visitor_ws(ctx, &v.conv, &v.token, last);
    // The customer ends: the report fails three times, more than the tenant's own rows
    // may, and still arrives.
    vs.send(json!({ "type": "end" }));
    ag.wait_for("wrap-up after three failed reports", T, |f| {
        ev(f) == "wrap_up_required" && f["event"]["conversation"] == c.as_str()
    });
    // The tenant's "ended" note to the conversation failed twice: parked.
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let list_url = format!("{}/api/v1/admin/tenants/t-long/deliveries/parked", ctx.base);
    let items = || -> Vec<Value> {
        let r = http("GET", &list_url, None, &auth);
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["items"].as_array().cloned().unwrap_or_default()
    };
    let note = poll_until("the tenant's note parked after 2 attempts", || {
        items().into_iter().find(|i| i["target"] == c.as_str())
    });
    assert_eq!(note["attempts"], 2, "{note}");
    assert_eq!(note["from"], "routing", "{note}");
    let listed = items();
    assert!(
        listed.iter().all(|i| i["from"] != c.as_str()),
        "nothing parked by the conversation: {listed:?}"
    );
    // Sent again, it arrives (its one remaining failure is retried).
    let key = note["key"].as_str().expect("key").replace(':', "%3A");
    let r = http("POST", &format!("{list_url}/{key}/retry"), None, &auth);
    assert_eq!(r.status, 200, "{:?}", r.body);
    drop(vs);
    ended_note_arrives(ctx, &v.conv, &v.token, last, "ended note after the retry");
}

/// An agent whose chat socket closed while the visitor wrote gets every message on
/// reconnect, once each and in order; a message the agent sent as the socket died
/// (and resends from its outbox) arrives once.
pub fn agent_socket_closed(ctx: &Ctx) {
    make_tenant(ctx, "t-drop", 30, 600, &[("d", 3)]);
    let mut a = agent(ctx, "t-drop", "d");
    a.available();
    let mut v = visitor(ctx, "t-drop-site", "Vic", "first");
    let c = a.wait_offer();
    a.accept(&c);
    // The chat socket opened after 0: it holds everything up to its welcome's last_seq.
    let held = a.chat(&c).seen[0]["last_seq"].as_u64().expect("welcome");
    // The agent sends and the socket dies before the ack is read.
    a.say(&c, "lost-ack", "sent as the line dropped");
    if let Some(s) = a.chats.remove(&c) {
        s.close();
    }
    for i in 0..5 {
        v.say(&format!("w{i}"), &format!("while you were away {i}"));
    }
    // Reconnect: a fresh ticket from the control socket, resume after what is held.
    a.send(json!({ "type": "ticket", "conversation": c }));
    a.open_chat(&c, held);
    // The outbox resends the unacknowledged message: acknowledged, stored once.
    a.say(&c, "lost-ack", "sent as the line dropped");
    let ack = a.chat(&c).wait_for("ack of the resend", T, |f| {
        ty(f) == "ack" && f["client_id"] == "lost-ack"
    });
    // Messages replayed on the new socket, plus the acknowledged one (which comes
    // inside its ack when the resend was what stored it).
    let seqs: Vec<u64> = {
        let s = a.chat(&c);
        let deadline = Instant::now() + T;
        let collect = |s: &Socket| -> std::collections::BTreeSet<u64> {
            s.seen
                .iter()
                .filter(|f| ty(f) == "message")
                .filter_map(|f| f["message"]["seq"].as_u64())
                .chain(ack["seq"].as_u64())
                .collect()
        };
        while collect(s).len() < 6 {
            assert!(Instant::now() < deadline, "missed messages did not arrive");
            let _ = s.next(Duration::from_millis(200));
        }
        let replayed: Vec<u64> = s
            .seen
            .iter()
            .filter(|f| ty(f) == "message")
            .filter_map(|f| f["message"]["seq"].as_u64())
            .collect();
        assert!(
            replayed.windows(2).all(|w| w[0] < w[1]),
            "each once, in order: {replayed:?}"
        );
        collect(s).into_iter().collect()
    };
    let want: Vec<u64> = (held + 1..=held + 6).collect();
    assert_eq!(seqs, want, "every missed message once, in order");
    assert!(ack["seq"].as_u64().is_some_and(|s| s > held));
    let msgs = transcript(ctx, &v);
    assert_eq!(
        msgs.iter()
            .filter(|m| m["text"] == "sent as the line dropped")
            .count(),
        1
    );
    v.wait_text("sent as the line dropped");
}

/// A queued chat past its queue's maximum wait is told so and can leave a message.
pub fn maximum_wait(ctx: &Ctx) {
    make_tenant_with(ctx, "t-wait", 30, 600, &[("w", 3)], |cfg| {
        cfg["config"]["queues"][0]["max_wait_secs"] = json!(2);
    });
    // Signed in (so chats may start) but never Available.
    let _a = agent(ctx, "t-wait", "w");
    let mut v = visitor(ctx, "t-wait-site", "Patient", "anyone?");
    v.sock.wait_for("max-wait note", T, |f| {
        ty(f) == "message" && f["message"]["note"]["by"]["by"] == "max_wait"
    });
    v.sock.wait_for("ended", T, |f| {
        ty(f) == "status" && f["status"]["status"] == "ended"
    });
    let r = http(
        "POST",
        &format!("{}/api/v1/messages", ctx.base),
        Some(&json!({ "site": "t-wait-site", "name": "Patient", "text": "Please call me back" })),
        &[("Origin", SHOP)],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    // The closed record says why.
    let list = closed_list(ctx, "t-wait");
    assert!(list.body.as_array().is_some_and(|l| l
        .iter()
        .any(|r| r["id"] == v.conv.as_str() && r["ended_by"]["by"] == "max_wait")));
    // A full queue refuses a start with a clear 503 naming the limit.
    make_tenant_with(ctx, "t-full", 30, 600, &[("x", 3)], |cfg| {
        cfg["config"]["queues"][0]["max_queue_length"] = json!(1);
    });
    let _x = agent(ctx, "t-full", "x");
    let _v1 = visitor(ctx, "t-full-site", "One", "a");
    let r = start_raw(ctx, "t-full-site", "Two", "b", &[]);
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (503, Some("queue_full")),
        "{:?}",
        r.body
    );
    assert!(r.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("1 conversations waiting")));
}

/// One round of the work a flood must not stall: sign-in, accept, a message each way.
fn routine(ctx: &Ctx, round: usize) -> Duration {
    let t0 = Instant::now();
    let mut m = agent(ctx, "t-flood", "m");
    m.available();
    let mut v = visitor(ctx, "t-flood-b", &format!("Routine {round}"), "need help");
    let c = m.wait_offer();
    m.accept(&c);
    v.say("r1", "ping");
    m.chat(&c).wait_for("visitor message", T, |f| {
        ty(f) == "message" && f["message"]["text"] == "ping"
    });
    m.say(&c, "r2", "pong");
    v.wait_text("pong");
    let took = t0.elapsed();
    m.send(json!({ "type": "end", "conversation": c }));
    m.sock
        .wait_for("wrap-up required", T, |f| ev(f) == "wrap_up_required");
    m.send(json!({ "type": "wrap_up", "conversation": c, "reason": "solved", "next": { "state": "idle", "reason": "break" } }));
    m.sock
        .wait_for("wrap-up done", T, |f| ev(f) == "wrap_up_done");
    took
}

/// 2,000 unanswered starts leave sign-in, accept and messages of another chat working.
pub fn flood(ctx: &Ctx) {
    make_tenant_with(ctx, "t-flood", 30, 600, &[("idle", 1), ("m", 3)], |cfg| {
        let c = &mut cfg["config"];
        c["queues"][0]["max_queue_length"] = json!(5000);
        c["max_open_conversations"] = json!(10000);
        c["sites"].as_array_mut().expect("sites").push(
            json!({ "key": "t-flood-b", "name": "B", "allowed_origins": [SHOP], "queue": "q2" }),
        );
        c["agents"][0]["queues"] = json!(["q1"]);
        c["agents"][1]["queues"] = json!(["q2"]);
    });
    // Someone of q1 is signed in (so starts are taken) but never Available.
    let _idle = agent(ctx, "t-flood", "idle");
    // The first round meets this server's injected delivery failures; measure the second.
    routine(ctx, 0);
    let before = routine(ctx, 1);
    let t0 = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let base = ctx.base.clone();
            std::thread::spawn(move || {
                let mut ok = 0;
                for i in 0..250 {
                    let body = json!({ "site": "t-flood-site", "name": format!("Flood {t}-{i}"), "text": "x", "client_id": "first" });
                    let r = http("POST", &format!("{base}/api/v1/conversations"), Some(&body), &[("Origin", SHOP)]);
                    if r.status == 201 {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let started: usize = threads
        .into_iter()
        .map(|t| t.join().expect("flood thread"))
        .sum();
    let flood_secs = t0.elapsed().as_secs_f64();
    assert_eq!(started, 2000, "every flood start was accepted");
    let after = routine(ctx, 2);
    println!(
        "     flood: 2,000 starts in {flood_secs:.1} s ({:.0}/s); sign-in + accept + message round trip {:.0} ms before, {:.0} ms after",
        2000.0 / flood_secs,
        before.as_secs_f64() * 1000.0,
        after.as_secs_f64() * 1000.0
    );
}

/// Retention: with a "day" of 2 s (`TEST_RETENTION_DAY_SECS`) and `retention_days: 1`,
/// the tenant's alarm erases closed chats and left messages by itself.
pub fn retention(ctx: &Ctx) {
    make_tenant_with(ctx, "t-ret", 60, 3600, &[("r", 3)], |c| {
        c["config"]["retention_days"] = json!(1);
    });
    let (v, _a) = closed_chat(ctx, "t-ret", "r", "short-lived");
    let r = http(
        "POST",
        &format!("{}/api/v1/messages", ctx.base),
        Some(&json!({ "site": "t-ret-site", "name": "Eva", "text": "call me" })),
        &[("Origin", SHOP)],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = closed_list(ctx, "t-ret")
            .body
            .as_array()
            .map_or(0, Vec::len);
        let tr = super::transcript(ctx, &v.conv, &v.token).status;
        if left == 0 && tr == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention did not erase: {left} closed, transcript {tr}"
        );
        // Poll pacing (the event is the alarm's erasure, checked above).
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Pictures an admin uploaded but no saved configuration uses are deleted a day after
/// their upload (a day is 2 s on this server); a picture an agent uses stays. An
/// unknown tenant gets no picture stored.
pub fn unused_pictures(ctx: &Ctx) {
    make_tenant(ctx, "t-pics", 30, 600, &[("pa", 3)]);
    let token = admin(ctx)[0].1.clone();
    let upload = |tenant: &str, bytes: &[u8]| {
        tests::http_raw(
            "PUT",
            &format!("{}/api/v1/admin/tenants/{tenant}/avatars", ctx.base),
            bytes,
            &[("Authorization", &token), ("Content-Type", "image/png")],
        )
    };
    let used = super::centre::png();
    let mut unused = used.clone();
    unused.extend_from_slice(b"another picture");
    let ids: Vec<String> = [&used, &unused]
        .iter()
        .map(|b| {
            let r = upload("t-pics", b);
            assert_eq!(r.status, 201, "{:?}", r.body);
            r.body["avatar"].as_str().expect("id").to_owned()
        })
        .collect();
    make_tenant_with(ctx, "t-pics", 30, 600, &[("pa", 3)], |c| {
        c["config"]["agents"][0]["avatar"] = json!(ids[0]);
    });
    let served = |tenant: &str, id: &str| {
        super::centre::fetch(&format!("{}/api/v1/avatars/{tenant}/{id}", ctx.base), &[]).0
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while served("t-pics", &ids[1]) != 404 {
        assert!(
            Instant::now() < deadline,
            "the unused picture was not deleted"
        );
        // Poll pacing (the event is the alarm's deletion, checked above).
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(served("t-pics", &ids[0]), 200, "the used picture stays");
    let r = upload("t-nobody", &unused);
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(served("t-nobody", &ids[1]), 404, "nothing stored");
}

/// The second server's scenarios, in order.
pub fn run_all(failed: &mut Vec<String>) {
    let mut server = Server::start(&[
        ("RATE_START_PER_MINUTE", "100000"),
        ("TEST_FAIL_DELIVERIES", "3"),
        ("TEST_RETENTION_DAY_SECS", "2"),
    ]);
    println!(
        "e2e: second wrangler dev on {} (TEST_FAIL_DELIVERIES=3, log {})",
        server.base(),
        server.log.display()
    );
    let ctx = Ctx {
        base: server.base(),
        ws: server.ws_base(),
    };
    let mut run = |name: &str, f: &mut dyn FnMut()| {
        let t0 = Instant::now();
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => println!("ok   {name} ({:.1} s)", t0.elapsed().as_secs_f64()),
            Err(_) => {
                println!("FAIL {name}");
                failed.push(name.to_owned());
            }
        }
    };
    run(
        "failed deliveries between objects: every decision arrives once",
        &mut || failed_deliveries(&ctx),
    );
    run(
        "2,000 unanswered starts leave the tenant working",
        &mut || flood(&ctx),
    );
    run(
        "retention: closed chats and left messages erased by the alarm",
        &mut || retention(&ctx),
    );
    run(
        "pictures uploaded but never saved are deleted after a day",
        &mut || unused_pictures(&ctx),
    );
    run(
        "kill between a decision and its delivery: it still arrives",
        &mut || kill_between_decision_and_delivery(&mut server, &ctx),
    );
    run(
        "a delivery refused for good is parked, listed, and delivered once on retry",
        &mut || parked_delivery(&mut server, &ctx),
    );
    run(
        "a conversation's report is retried until taken; the tenant's rows give up",
        &mut || reports_retried_until_taken(&mut server, &ctx),
    );
}
