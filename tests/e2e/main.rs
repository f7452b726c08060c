//! End-to-end tests of SPEC §3 and §6 over the real wire, against a real
//! `wrangler dev` that this binary starts (and stops), then the browser test in
//! headless Chromium, then a kill-and-restart test.
//!
//! Each scenario creates its own tenant through the admin API (short offer
//! timeouts keep it fast), so scenarios do not disturb each other.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;
use tests::{ev, http, open_ws, ty, Server, Socket, ADMIN_TOKEN};

mod centre;
mod corpus;
mod delivery;

const T: Duration = Duration::from_secs(20);
const PW: &str = "password-123";
/// The page origin every test site allows (the widget API refuses requests without one).
const SHOP: &str = "https://shop.example";
/// Identity secret of every test site (32 bytes or more).
const SITE_SECRET: &str = "s3cret-s3cret-s3cret-s3cret-s3cret";

struct Ctx {
    base: String,
    ws: String,
}

fn admin(_ctx: &Ctx) -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {ADMIN_TOKEN}"))]
}

/// The admin API's list of a tenant's closed conversations and left messages.
fn closed_list(ctx: &Ctx, tenant: &str) -> tests::Answer {
    let h = admin(ctx);
    let mut a = http(
        "GET",
        &format!("{}/api/v1/admin/tenants/{tenant}/conversations", ctx.base),
        None,
        &[("Authorization", &h[0].1)],
    );
    a.body = a.body["items"].clone();
    a
}

/// A tenant with queues q1, q2, agents with capacities, one site `<tenant>-site`.
fn make_tenant(
    ctx: &Ctx,
    tenant: &str,
    offer_secs: u32,
    inactivity_secs: u32,
    agents: &[(&str, u32)],
) {
    make_tenant_with(ctx, tenant, offer_secs, inactivity_secs, agents, |_| {});
}

/// [`make_tenant`], with a last edit of the configuration body.
fn make_tenant_with(
    ctx: &Ctx,
    tenant: &str,
    offer_secs: u32,
    inactivity_secs: u32,
    agents: &[(&str, u32)],
    edit: impl FnOnce(&mut Value),
) {
    let mut cfg = json!({
        "config": {
            "name": tenant,
            "sites": [{ "key": format!("{tenant}-site"), "name": "Site", "allowed_origins": ["https://shop.example"], "queue": "q1" }],
            "queues": [
                { "id": "q1", "name": "Support", "offer_timeout_secs": offer_secs, "inactivity_timeout_secs": inactivity_secs },
                { "id": "q2", "name": "Sales", "offer_timeout_secs": offer_secs, "inactivity_timeout_secs": inactivity_secs }
            ],
            "agents": agents.iter().map(|(id, cap)| json!({ "id": id, "name": format!("Agent {id}"), "capacity": cap, "queues": ["q1", "q2"] })).collect::<Vec<_>>(),
            "idle_reasons": [{ "id": "break", "label": "Break" }],
            "wrap_up_reasons": [{ "id": "solved", "label": "Solved" }],
            "templates": [{ "id": "hi", "name": "Hi", "text": "Hallo <customer_name>, hier ist <agent_name>." }]
        },
        "passwords": agents.iter().map(|(id, _)| (id.to_string(), json!(PW))).collect::<serde_json::Map<_, _>>(),
        "site_secrets": { format!("{tenant}-site"): SITE_SECRET }
    });
    edit(&mut cfg);
    let h = admin(ctx);
    let a = http(
        "PUT",
        &format!("{}/api/v1/admin/tenants/{tenant}/config", ctx.base),
        Some(&cfg),
        &[("Authorization", &h[0].1)],
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
}

struct Agent {
    id: String,
    token: String,
    /// The control socket (state, offers, routing).
    sock: Socket,
    /// One chat socket per joined conversation (the message path).
    chats: std::collections::HashMap<String, Socket>,
    ws: String,
}

fn sign_in(ctx: &Ctx, tenant: &str, id: &str) -> String {
    // The demo tenant's agents have the passwords of edge/demo-tenant.json.
    let pw = if tenant == "demo" {
        format!("{id}-demo-pass")
    } else {
        PW.to_string()
    };
    let a = http(
        "POST",
        &format!("{}/api/v1/agent/sign-in", ctx.base),
        Some(&json!({ "tenant": tenant, "agent": id, "password": pw })),
        &[],
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body["token"].as_str().expect("token").to_owned()
}

/// A control-socket ticket for a session (the token goes in a header).
fn control_ticket(ctx: &Ctx, token: &str) -> tests::Answer {
    http(
        "POST",
        &format!("{}/api/v1/agent/ticket", ctx.base),
        None,
        &[("Authorization", &format!("Bearer {token}"))],
    )
}

fn agent_ws(ctx: &Ctx, token: &str) -> Socket {
    let t = control_ticket(ctx, token);
    assert_eq!(t.status, 200, "{:?}", t.body);
    let ticket = t.body["ticket"].as_str().expect("ticket");
    let mut s =
        open_ws(&format!("{}/api/v1/agent/ws?ticket={ticket}", ctx.ws), None).expect("agent ws");
    s.wait_for("snapshot", T, |v| ty(v) == "snapshot");
    s
}

fn agent(ctx: &Ctx, tenant: &str, id: &str) -> Agent {
    let token = sign_in(ctx, tenant, id);
    let sock = agent_ws(ctx, &token);
    Agent {
        id: id.into(),
        token,
        sock,
        chats: Default::default(),
        ws: ctx.ws.clone(),
    }
}

/// Opens a chat socket with a ticket, after `after`.
/// Retries while the conversation does not exist yet (see [`visitor_ws`]).
fn chat_ws(ws_base: &str, conv: &str, ticket: &str, after: u64) -> Result<Socket, (u16, String)> {
    let url =
        format!("{ws_base}/api/v1/conversations/{conv}/agent-ws?ticket={ticket}&after={after}");
    let deadline = std::time::Instant::now() + T;
    let mut s = loop {
        match open_ws(&url, None) {
            Ok(s) => break s,
            Err((404, _)) if std::time::Instant::now() < deadline => {}
            Err(e) => return Err(e),
        }
    };
    s.wait_for("chat welcome", T, |v| ty(v) == "welcome");
    Ok(s)
}

impl Agent {
    fn send(&mut self, v: Value) {
        self.sock.send(v);
    }
    fn available(&mut self) {
        self.send(json!({ "type": "set_state", "state": { "state": "available" } }));
        self.sock.wait_for("state available", T, |v| {
            ev(v) == "state" && v["event"]["state"]["state"] == "available"
        });
    }
    fn wait_offer(&mut self) -> String {
        let o = self
            .sock
            .wait_for(&format!("offer to {}", self.id), T, |v| ty(v) == "offer");
        o["offer"]["conversation"]
            .as_str()
            .expect("conv")
            .to_owned()
    }
    fn accept(&mut self, conv: &str) {
        self.send(json!({ "type": "accept", "conversation": conv }));
        self.sock.wait_for("joined", T, |v| {
            ev(v) == "joined" && v["event"]["conversation"] == conv
        });
        self.open_chat(conv, 0);
    }
    /// Waits for a ticket for `conv` on the control socket and opens the chat socket.
    fn open_chat(&mut self, conv: &str, after: u64) {
        let t = self.sock.wait_for("ticket", T, |v| {
            ty(v) == "ticket" && v["conversation"] == conv
        });
        let ticket = t["ticket"].as_str().expect("ticket").to_owned();
        let s = chat_ws(&self.ws, conv, &ticket, after).expect("chat socket");
        self.chats.insert(conv.to_owned(), s);
    }
    /// The chat socket of `conv`.
    fn chat(&mut self, conv: &str) -> &mut Socket {
        self.chats.get_mut(conv).expect("chat socket open")
    }
    fn say(&mut self, conv: &str, cid: &str, text: &str) {
        self.chat(conv)
            .send(json!({ "type": "send", "client_id": cid, "text": text }));
    }
    fn chat_error(&mut self, conv: &str, code: &str) -> Value {
        self.chat(conv).wait_for(&format!("error {code}"), T, |v| {
            ty(v) == "error" && v["code"] == code
        })
    }
    fn error(&mut self, code: &str) -> Value {
        self.sock.wait_for(&format!("error {code}"), T, |v| {
            ty(v) == "error" && v["code"] == code
        })
    }
}

struct Visitor {
    conv: String,
    token: String,
    sock: Socket,
}

fn start_raw(
    ctx: &Ctx,
    site: &str,
    name: &str,
    text: &str,
    extra: &[(&str, &str)],
) -> tests::Answer {
    let body = json!({ "site": site, "name": name, "text": text, "client_id": "first" });
    let mut headers: Vec<(&str, &str)> = extra.to_vec();
    if !extra.iter().any(|(k, _)| *k == "Origin") {
        headers.push(("Origin", SHOP));
    }
    http(
        "POST",
        &format!("{}/api/v1/conversations", ctx.base),
        Some(&body),
        &headers,
    )
}

/// A visitor's socket ticket (token in a header, from the shop's origin).
fn visitor_ticket(ctx: &Ctx, conv: &str, token: &str) -> tests::Answer {
    http(
        "POST",
        &format!("{}/api/v1/conversations/{conv}/ticket", ctx.base),
        None,
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Origin", SHOP),
        ],
    )
}

/// The visitor's transcript over HTTP (token in a header).
fn transcript(ctx: &Ctx, conv: &str, token: &str) -> tests::Answer {
    http(
        "GET",
        &format!("{}/api/v1/conversations/{conv}/transcript", ctx.base),
        None,
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Origin", SHOP),
        ],
    )
}

/// Opens the visitor socket. A started conversation is created by the first delivery
/// of its start decision; while that delivery is being retried (tests that make
/// deliveries fail) the socket is refused with 404, so this retries until the deadline.
fn visitor_ws(ctx: &Ctx, conv: &str, token: &str, after: u64) -> Socket {
    let deadline = std::time::Instant::now() + T;
    let mut s = loop {
        let t = visitor_ticket(ctx, conv, token);
        if t.status == 404 && std::time::Instant::now() < deadline {
            continue;
        }
        assert_eq!(t.status, 200, "ticket: {:?}", t.body);
        let url = format!(
            "{}/api/v1/conversations/{conv}/ws?ticket={}&after={after}",
            ctx.ws,
            t.body["ticket"].as_str().expect("ticket")
        );
        match open_ws(&url, Some(SHOP)) {
            Ok(s) => break s,
            Err(e) => panic!("visitor ws refused: {e:?}"),
        }
    };
    s.wait_for("welcome", T, |v| ty(v) == "welcome");
    s
}

fn visitor(ctx: &Ctx, site: &str, name: &str, text: &str) -> Visitor {
    let a = start_raw(ctx, site, name, text, &[]);
    assert_eq!(a.status, 201, "{:?}", a.body);
    let conv = a.body["conversation"].as_str().expect("conv").to_owned();
    let token = a.body["token"].as_str().expect("token").to_owned();
    let sock = visitor_ws(ctx, &conv, &token, 0);
    Visitor { conv, token, sock }
}

impl Visitor {
    fn say(&mut self, cid: &str, text: &str) -> u64 {
        self.sock
            .send(json!({ "type": "send", "client_id": cid, "text": text }));
        let a = self
            .sock
            .wait_for("ack", T, |v| ty(v) == "ack" && v["client_id"] == cid);
        a["seq"].as_u64().expect("seq")
    }
    fn wait_text(&mut self, text: &str) -> Value {
        self.sock.wait_for(&format!("message {text:?}"), T, |v| {
            ty(v) == "message" && v["message"]["text"] == text
        })
    }
}

fn msg_from(v: &Value, text: &str) -> bool {
    ty(v) == "message" && v["message"]["message"].is_null() && v["message"]["text"] == text
}

// ---------------------------------------------------------------- scenarios

fn walking_skeleton_demo(ctx: &Ctx) {
    let mut anna = agent(ctx, "demo", "anna");
    assert_eq!(anna.sock.seen[0]["snapshot"]["name"], "Anna Schmidt");
    anna.available();
    let mut v = visitor(ctx, "demo", "Eva", "Hallo!");
    let conv = anna.wait_offer();
    assert_eq!(conv, v.conv);
    let offer = anna.sock.seen.last().cloned().unwrap_or_default();
    assert_eq!(offer["offer"]["customer_name"], "Eva");
    assert_eq!(offer["offer"]["queue_name"], "Support");
    assert!(
        offer["thread"]
            .as_array()
            .is_some_and(|t| t.iter().any(|m| m["text"] == "Hallo!")),
        "offer carries the thread"
    );
    anna.accept(&conv);
    v.sock.wait_for("active status", T, |f| {
        ty(f) == "status"
            && f["status"]["status"] == "active"
            && f["status"]["agent_name"] == "Anna Schmidt"
    });
    anna.say(&conv, "a1", "Guten Tag!");
    anna.chat(&conv)
        .wait_for("ack", T, |f| ty(f) == "ack" && f["client_id"] == "a1");
    v.wait_text("Guten Tag!");
    // Typing indicators both ways.
    v.sock.send(json!({ "type": "typing", "typing": true }));
    anna.chat(&conv).wait_for("visitor typing", T, |f| {
        ty(f) == "typing" && f["typing"] == true && f["name"] == "Eva"
    });
    anna.chat(&conv)
        .send(json!({ "type": "typing", "typing": true }));
    v.sock.wait_for("agent typing", T, |f| {
        ty(f) == "typing" && f["typing"] == true && f["name"] == "Anna Schmidt"
    });
    v.say("v1", "Danke");
    anna.chat(&conv).wait_for("customer message", T, |f| {
        ty(f) == "message" && f["message"]["text"] == "Danke"
    });
    // End and wrap up so the browser test later finds the demo agents free.
    anna.send(json!({ "type": "end", "conversation": conv }));
    anna.sock
        .wait_for("wrap-up required", T, |f| ev(f) == "wrap_up_required");
    anna.send(json!({ "type": "wrap_up", "conversation": conv, "reason": "solved", "next": { "state": "idle", "reason": "break" } }));
    anna.sock
        .wait_for("wrap-up done", T, |f| ev(f) == "wrap_up_done");
    v.sock.wait_for("ended", T, |f| {
        ty(f) == "status" && f["status"]["status"] == "ended"
    });
    let _ = msg_from;
}

fn rona_and_front_of_queue(ctx: &Ctx) {
    make_tenant(ctx, "t-rona", 2, 600, &[("a1", 3), ("a2", 3)]);
    let mut a1 = agent(ctx, "t-rona", "a1");
    let mut a2 = agent(ctx, "t-rona", "a2");
    a1.available();
    let v1 = visitor(ctx, "t-rona-site", "First", "one");
    assert_eq!(a1.wait_offer(), v1.conv);
    // Nobody else is Available: a second visitor queues behind.
    let v2 = visitor(ctx, "t-rona-site", "Second", "two");
    // The offer expires (alarm): a1 goes to RONA.
    a1.sock.wait_for("RONA", T, |f| {
        ev(f) == "state" && f["event"]["state"]["state"] == "rona"
    });
    a1.sock.wait_for("offer withdrawn", T, |f| {
        ev(f) == "offer_withdrawn" && f["event"]["reason"] == "expired"
    });
    // a2 becomes available and gets the first conversation (front of the queue), not the second.
    a2.available();
    assert_eq!(
        a2.wait_offer(),
        v1.conv,
        "the expired offer went back to the front"
    );
    // RONA stays until the agent leaves it; then a1 gets the second chat.
    let snap = {
        let t = sign_in(ctx, "t-rona", "a1");
        let mut s = agent_ws(ctx, &t);
        let snap = s.seen[0].clone();
        s.send(json!({"type": "ping"}));
        s.wait_for("pong", T, |f| ty(f) == "pong");
        snap
    };
    assert_eq!(snap["snapshot"]["state"]["state"], "rona");
    a1.send(json!({ "type": "set_state", "state": { "state": "available" } }));
    assert_eq!(a1.wait_offer(), v2.conv);
}

fn capacity_and_wrap_up(ctx: &Ctx) {
    make_tenant(ctx, "t-cap", 30, 600, &[("solo", 1)]);
    let mut a = agent(ctx, "t-cap", "solo");
    a.available();
    let v1 = visitor(ctx, "t-cap-site", "A", "first");
    let c1 = a.wait_offer();
    a.accept(&c1);
    let v2 = visitor(ctx, "t-cap-site", "B", "second");
    assert_eq!(
        v2.sock.seen[0]["status"]["status"], "queued",
        "no free capacity: the second chat waits"
    );
    a.send(json!({ "type": "end", "conversation": c1 }));
    a.sock
        .wait_for("wrap-up required", T, |f| ev(f) == "wrap_up_required");
    // Wrap-up pending still holds the only slot; a bad reason is refused.
    a.send(json!({ "type": "wrap_up", "conversation": c1, "reason": "nope", "next": { "state": "available" } }));
    a.error("unknown_wrap_up_reason");
    a.send(json!({ "type": "wrap_up", "conversation": c1, "reason": "solved", "next": { "state": "available" } }));
    assert_eq!(a.wait_offer(), v2.conv);
    // The closed record keeps wrap-up reason, queue history and times.
    let h = admin(ctx);
    let list = closed_list(ctx, "t-cap");
    assert_eq!(list.status, 200);
    let rec = list
        .body
        .as_array()
        .and_then(|l| l.iter().find(|r| r["id"] == v1.conv.as_str()).cloned())
        .expect("closed record");
    assert_eq!(rec["wrap_ups"][0]["reason"], "solved");
    assert_eq!(rec["queue_history"][0]["queue"], "q1");
    assert!(rec["handle_secs"].as_i64().is_some() && rec["wait_secs"].as_i64().is_some());
    let one = http(
        "GET",
        &format!(
            "{}/api/v1/admin/tenants/t-cap/conversations/{}",
            ctx.base, v1.conv
        ),
        None,
        &[("Authorization", &h[0].1)],
    );
    assert!(one.body["transcript"]
        .as_array()
        .is_some_and(|t| t.iter().any(|m| m["text"] == "first")));
}

fn transfers(ctx: &Ctx) {
    make_tenant(ctx, "t-tr", 2, 600, &[("x", 3), ("y", 3)]);
    let mut x = agent(ctx, "t-tr", "x");
    let mut y = agent(ctx, "t-tr", "y");
    x.available();
    let mut v = visitor(ctx, "t-tr-site", "Cust", "help");
    let c = x.wait_offer();
    x.accept(&c);
    // Transfer to an agent who is not available: refused, nothing changes.
    x.send(
        json!({ "type": "transfer", "conversation": c, "target": { "kind": "agent", "id": "y" } }),
    );
    x.error("target_unavailable");
    y.available();
    // The refresh list offers y.
    x.send(json!({ "type": "targets" }));
    let t = x.sock.wait_for("targets", T, |f| ty(f) == "targets");
    assert!(t["agents"]
        .as_array()
        .is_some_and(|a| a.iter().any(|a| a["id"] == "y")));
    // Transfer to y, accepted.
    x.send(
        json!({ "type": "transfer", "conversation": c, "target": { "kind": "agent", "id": "y" } }),
    );
    x.sock
        .wait_for("x owes wrap-up", T, |f| ev(f) == "wrap_up_required");
    assert_eq!(y.wait_offer(), c);
    v.sock.wait_for("transferring note", T, |f| {
        ty(f) == "message" && f["message"]["note"]["note"] == "transferring"
    });
    y.accept(&c);
    v.sock.wait_for("y joined", T, |f| {
        ty(f) == "message"
            && f["message"]["note"]["note"] == "joined"
            && f["message"]["note"]["agent_name"] == "Agent y"
    });
    // Transfer y → x while x still owes the wrap-up for it: x is not free for it.
    y.send(
        json!({ "type": "transfer", "conversation": c, "target": { "kind": "agent", "id": "x" } }),
    );
    y.error("target_unavailable");
    x.send(json!({ "type": "wrap_up", "conversation": c, "reason": "solved", "next": { "state": "available" } }));
    x.sock
        .wait_for("wrap-up done", T, |f| ev(f) == "wrap_up_done");
    // Now y transfers to x, x does not accept: discarded, x goes RONA, the chat re-enters its queue at the front.
    y.send(
        json!({ "type": "transfer", "conversation": c, "target": { "kind": "agent", "id": "x" } }),
    );
    assert_eq!(x.wait_offer(), c);
    x.sock.wait_for("x RONA", T, |f| {
        ev(f) == "state" && f["event"]["state"]["state"] == "rona"
    });
    v.sock.wait_for("back in queue", T, |f| {
        ty(f) == "status" && f["status"]["status"] == "queued"
    });
    // y wraps up and becomes available: the chat is offered again; y accepts; then transfer to queue q2.
    y.send(json!({ "type": "wrap_up", "conversation": c, "reason": "solved", "next": { "state": "available" } }));
    assert_eq!(
        y.wait_offer(),
        c,
        "wait — y owed a wrap-up, after it y is free for the chat again"
    );
    y.accept(&c);
    y.send(
        json!({ "type": "transfer", "conversation": c, "target": { "kind": "queue", "id": "q2" } }),
    );
    y.sock.wait_for("wrap-up for queue transfer", T, |f| {
        ev(f) == "wrap_up_required"
    });
    v.sock.wait_for("queued in Sales", T, |f| {
        ty(f) == "message" && f["message"]["note"]["queue_name"] == "Sales"
    });
    // Nothing of the thread was lost.
    let tr = transcript(ctx, &v.conv, &v.token);
    assert!(tr.body["messages"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m["text"] == "help")));
}

fn conference(ctx: &Ctx) {
    make_tenant(ctx, "t-conf", 2, 600, &[("o", 3), ("g", 3)]);
    let mut o = agent(ctx, "t-conf", "o");
    let mut g = agent(ctx, "t-conf", "g");
    o.available();
    let mut v = visitor(ctx, "t-conf-site", "Cust", "hi");
    let c = o.wait_offer();
    o.accept(&c);
    g.available();
    o.send(json!({ "type": "conference", "conversation": c, "guest": "g" }));
    o.sock.wait_for("Conference Requested", T, |f| {
        ev(f) == "status" && f["event"]["status"]["status"] == "conference_requested"
    });
    let offer = g.sock.wait_for("conference offer", T, |f| ty(f) == "offer");
    assert_eq!(offer["offer"]["kind"]["kind"], "conference");
    g.accept(&c);
    o.sock.wait_for("Conference", T, |f| {
        ev(f) == "status" && f["event"]["status"]["status"] == "conference"
    });
    v.sock.wait_for("guest joined", T, |f| {
        ty(f) == "message" && f["message"]["note"]["agent_name"] == "Agent g"
    });
    // All three see all messages.
    v.say("v-c1", "to both");
    o.chat(&c).wait_for("owner sees", T, |f| {
        ty(f) == "message" && f["message"]["text"] == "to both"
    });
    g.chat(&c).wait_for("guest sees", T, |f| {
        ty(f) == "message" && f["message"]["text"] == "to both"
    });
    g.say(&c, "g1", "guest here");
    o.chat(&c).wait_for("owner sees guest", T, |f| {
        ty(f) == "message" && f["message"]["text"] == "guest here"
    });
    v.wait_text("guest here");
    // End Conference: the guest leaves, the owner keeps the chat.
    o.send(json!({ "type": "end_conference", "conversation": c }));
    g.sock.wait_for("guest left", T, |f| ev(f) == "left");
    o.sock.wait_for("back to active", T, |f| {
        ev(f) == "status" && f["event"]["status"]["status"] == "active"
    });
    // The conversation closes the guest's chat socket, and no new ticket is issued.
    let (code, _) = g.chat(&c).wait_closed("guest chat socket", T);
    assert_eq!(code, 4003);
    g.send(json!({ "type": "ticket", "conversation": c }));
    g.error("not_participant");
    // A second request that is not accepted in time: discarded, guest RONA.
    o.send(json!({ "type": "conference", "conversation": c, "guest": "g" }));
    g.wait_offer();
    g.sock.wait_for("guest RONA", T, |f| {
        ev(f) == "state" && f["event"]["state"]["state"] == "rona"
    });
    o.sock.wait_for("plain active again", T, |f| {
        ev(f) == "status" && f["event"]["status"]["status"] == "active"
    });
}

fn ends(ctx: &Ctx) {
    make_tenant(ctx, "t-end", 30, 10, &[("e", 3)]);
    let mut a = agent(ctx, "t-end", "e");
    a.available();
    // End by the visitor.
    let mut v = visitor(ctx, "t-end-site", "V", "bye soon");
    let c = a.wait_offer();
    a.accept(&c);
    v.sock.send(json!({ "type": "end" }));
    a.sock.wait_for("wrap-up after customer end", T, |f| {
        ev(f) == "wrap_up_required" && f["event"]["conversation"] == c.as_str()
    });
    v.sock.wait_for("ended", T, |f| {
        ty(f) == "status" && f["status"]["status"] == "ended"
    });
    v.sock
        .send(json!({ "type": "send", "client_id": "late", "text": "hello?" }));
    v.sock.wait_for("ended error", T, |f| {
        ty(f) == "error" && f["code"] == "conversation_ended"
    });
    a.send(json!({ "type": "wrap_up", "conversation": c, "reason": "solved", "next": { "state": "available" } }));
    a.sock.wait_for("done", T, |f| ev(f) == "wrap_up_done");
    // End by inactivity (10 s without customer activity), driven by the alarm.
    let mut v2 = visitor(ctx, "t-end-site", "Quiet", "hello");
    let c2 = a.wait_offer();
    a.accept(&c2);
    v2.sock
        .wait_for("inactivity end", Duration::from_secs(30), |f| {
            ty(f) == "message" && f["message"]["note"]["by"]["by"] == "inactivity"
        });
    a.sock.wait_for("wrap-up after inactivity", T, |f| {
        ev(f) == "wrap_up_required" && f["event"]["conversation"] == c2.as_str()
    });
}

fn message_rules_and_templates(ctx: &Ctx) {
    make_tenant(ctx, "t-msg", 30, 600, &[("m", 3)]);
    let mut a = agent(ctx, "t-msg", "m");
    a.available();
    let mut v = visitor(ctx, "t-msg-site", "Eva", "hi");
    let c = a.wait_offer();
    a.accept(&c);
    a.say(&c, "r1", "a <b> c");
    let e = a.chat_error(&c, "message_reserved_chars");
    assert!(e["message"]
        .as_str()
        .is_some_and(|m| m.contains("reserved for template parameters")));
    a.say(&c, "r2", &"x".repeat(1001));
    a.chat_error(&c, "message_too_long");
    a.say(&c, "r3", &"ä".repeat(1000));
    a.chat(&c).wait_for("1000 chars accepted", T, |f| {
        ty(f) == "ack" && f["client_id"] == "r3"
    });
    a.say(&c, "r4", "   ");
    a.chat_error(&c, "message_empty");
    // The visitor may use < and > (shown as plain text), but not empty text.
    v.sock
        .send(json!({ "type": "send", "client_id": "v<1", "text": "x" }));
    v.sock.wait_for("bad client id", T, |f| {
        ty(f) == "error" && f["code"] == "invalid_frame"
    });
    v.sock
        .send(json!({ "type": "send", "client_id": "v2", "text": "" }));
    v.sock.wait_for("empty refused", T, |f| {
        ty(f) == "error" && f["code"] == "message_empty"
    });
    v.say("v3", "<script>alert(1)</script>");
    // Templates.
    a.send(json!({ "type": "template", "conversation": c, "template": "hi" }));
    let t = a.sock.wait_for("template", T, |f| ty(f) == "template");
    assert_eq!(t["text"], "Hallo Eva, hier ist Agent m.");
    assert_eq!(t["stripped"], json!([]), "nothing removed");
    a.send(json!({ "type": "template", "conversation": c, "template": "nope" }));
    a.error("unknown_template");
    // A template with an unknown parameter is refused by the admin API, naming it.
    let h = admin(ctx);
    let mut cfg = http(
        "GET",
        &format!("{}/api/v1/admin/tenants/t-msg/config", ctx.base),
        None,
        &[("Authorization", &h[0].1)],
    )
    .body;
    cfg["config"]["templates"][0]["text"] = json!("Hi <nickname>");
    let r = http(
        "PUT",
        &format!("{}/api/v1/admin/tenants/t-msg/config", ctx.base),
        Some(&cfg),
        &[("Authorization", &h[0].1)],
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("<nickname>")),
        "{:?}",
        r.body
    );
    // A refused configuration claims nothing: its new site stays free for another tenant.
    cfg["config"]["sites"].as_array_mut().expect("sites").push(
        json!({ "key": "t-msg-extra", "name": "Extra", "allowed_origins": [], "queue": "q1" }),
    );
    let r = http(
        "PUT",
        &format!("{}/api/v1/admin/tenants/t-msg/config", ctx.base),
        Some(&cfg),
        &[("Authorization", &h[0].1)],
    );
    assert_eq!(r.status, 400, "{:?}", r.body);
    make_tenant_with(ctx, "t-msg-2", 30, 600, &[("m2", 3)], |c| {
        c["config"]["sites"].as_array_mut().expect("sites").push(
            json!({ "key": "t-msg-extra", "name": "Extra", "allowed_origins": [], "queue": "q1" }),
        );
    });
    // Malformed frames get a clear error and the socket stays open.
    a.sock.send_raw("not json");
    a.error("invalid_frame");
    a.chat(&c)
        .send_raw(r#"{"v":1,"type":"send","client_id":"x"}"#);
    let e = a.chat_error(&c, "invalid_frame");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing field")),
        "{e}"
    );
    a.sock.send_raw(r#"{"v":9,"type":"ping"}"#);
    a.error("invalid_frame");
    a.send(json!({ "type": "ping" }));
    a.sock.wait_for("pong", T, |f| ty(f) == "pong");
}

fn resume_and_dedup(ctx: &Ctx) {
    make_tenant(ctx, "t-res", 30, 600, &[("r", 3)]);
    let mut a = agent(ctx, "t-res", "r");
    a.available();
    let mut v = visitor(ctx, "t-res-site", "Eva", "start");
    let c = a.wait_offer();
    a.accept(&c);
    let s1 = v.say("m1", "one");
    // A resend of the same client id is stored once and acknowledged with the same number.
    let s1b = v.say("m1", "one");
    assert_eq!(s1, s1b);
    // The visitor drops; the agent writes two messages meanwhile.
    let last_seen = v
        .sock
        .seen
        .iter()
        .filter_map(|f| f["message"]["seq"].as_u64())
        .max()
        .unwrap_or(0)
        .max(s1);
    v.sock.close();
    a.say(&c, "x1", "while away 1");
    a.chat(&c)
        .wait_for("ack x1", T, |f| ty(f) == "ack" && f["client_id"] == "x1");
    a.say(&c, "x2", "while away 2");
    a.chat(&c)
        .wait_for("ack x2", T, |f| ty(f) == "ack" && f["client_id"] == "x2");
    let mut s = visitor_ws(ctx, &v.conv, &v.token, last_seen);
    let m1 = s.wait_for("missed 1", T, |f| ty(f) == "message");
    let m2 = s.wait_for("missed 2", T, |f| ty(f) == "message");
    assert_eq!(m1["message"]["text"], "while away 1");
    assert_eq!(m2["message"]["text"], "while away 2");
    assert_eq!(
        m2["message"]["seq"].as_u64(),
        m1["message"]["seq"].as_u64().map(|x| x + 1)
    );
    assert!(m1["message"]["seq"].as_u64() > Some(last_seen));
    // The full transcript has every message once, sequence numbers 1..n.
    let tr = transcript(ctx, &v.conv, &v.token);
    let msgs = tr.body["messages"].as_array().cloned().unwrap_or_default();
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m["seq"].as_u64(), Some(i as u64 + 1));
    }
    assert_eq!(msgs.iter().filter(|m| m["text"] == "one").count(), 1);
}

fn double_accept_race(ctx: &Ctx) {
    make_tenant(ctx, "t-race", 30, 600, &[("d", 20)]);
    let mut a = agent(ctx, "t-race", "d");
    let token2 = a.token.clone();
    let mut b = agent_ws(ctx, &token2);
    a.available();
    for i in 0..15 {
        let mut v = visitor(ctx, "t-race-site", &format!("R{i}"), "race");
        let c = a.wait_offer();
        assert_eq!(c, v.conv);
        // Both sessions click Accept at once.
        let f = json!({ "type": "accept", "conversation": c });
        a.send(f.clone());
        b.send(f);
        // Both sessions of the winner hear "joined"; one of the two accepts is refused.
        for s in [&mut a.sock, &mut b] {
            s.wait_for("joined", T, |x| {
                ev(x) == "joined" && x["event"]["conversation"] == c.as_str()
            });
        }
        let refused = |x: &Value| ty(x) == "error" && x["code"] == "not_offered";
        let deadline = std::time::Instant::now() + T;
        while !a.sock.seen.iter().any(refused) && !b.seen.iter().any(refused) {
            assert!(
                std::time::Instant::now() < deadline,
                "round {i}: no accept was refused"
            );
            let _ = a.sock.next(Duration::from_millis(50));
            let _ = b.next(Duration::from_millis(50));
        }
        // The server's record: exactly one agent joined.
        v.sock.wait_for("joined note", T, |f| {
            ty(f) == "message" && f["message"]["note"]["note"] == "joined"
        });
        let tr = transcript(ctx, &v.conv, &v.token);
        let joins = tr.body["messages"].as_array().map_or(0, |m| {
            m.iter().filter(|m| m["note"]["note"] == "joined").count()
        });
        assert_eq!(joins, 1, "round {i}: exactly one accept wins");
        a.sock.clear();
        b.clear();
    }
}

fn security(ctx: &Ctx) {
    make_tenant(ctx, "t-sec", 30, 600, &[("s", 3)]);
    make_tenant(ctx, "t-other", 30, 600, &[("o", 3)]);
    let mut a = agent(ctx, "t-sec", "s");
    a.available();
    let v = visitor(ctx, "t-sec-site", "V", "x");
    let c = a.wait_offer();
    // Control tickets: missing, forged, garbage and expired sessions are refused.
    let expired = {
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"tenant":"t-sec","agent":"s","sid":"x","exp":1000}).to_string());
        format!("{payload}.{}", tests_hmac(&payload))
    };
    for (what, tok) in [
        ("missing", String::new()),
        ("forged", format!("{}x", a.token)),
        ("garbage", "abc".into()),
        ("expired", expired),
    ] {
        let r = control_ticket(ctx, &tok);
        assert_eq!(r.status, 401, "{what} token: {:?}", r.body);
    }
    // The socket takes tickets only, each once; a session token is not a ticket.
    let r = open_ws(
        &format!("{}/api/v1/agent/ws?ticket={}", ctx.ws, a.token),
        None,
    );
    assert_eq!(r.err().map(|e| e.0), Some(401), "session token as ticket");
    let t = control_ticket(ctx, &a.token).body["ticket"]
        .as_str()
        .expect("ticket")
        .to_owned();
    let url = format!("{}/api/v1/agent/ws?ticket={t}", ctx.ws);
    assert!(open_ws(&url, None).is_ok());
    assert_eq!(
        open_ws(&url, None).err().map(|e| e.0),
        Some(401),
        "ticket reused"
    );
    // Wrong password, unknown agent, unknown tenant: the same answer.
    let try_sign_in = |tenant: &str, agent: &str| {
        http(
            "POST",
            &format!("{}/api/v1/agent/sign-in", ctx.base),
            Some(&json!({"tenant": tenant, "agent": agent, "password":"nope-nope"})),
            &[("CF-Connecting-IP", "198.51.100.7")],
        )
    };
    let w = try_sign_in("t-sec", "s");
    let u = try_sign_in("t-sec", "ghost");
    let t = try_sign_in("t-nobody-configured", "s");
    for r in [&w, &u, &t] {
        assert_eq!(r.status, 401, "{:?}", r.body);
        assert_eq!(r.body, w.body);
    }
    // Admin routes.
    for (auth, want) in [(None, 401), (Some("Bearer wrong"), 401)] {
        let h: Vec<(&str, &str)> = auth.map(|x| vec![("Authorization", x)]).unwrap_or_default();
        for path in ["config", "conversations"] {
            let r = http(
                "GET",
                &format!("{}/api/v1/admin/tenants/t-sec/{path}", ctx.base),
                None,
                &h,
            );
            assert_eq!(r.status, want, "{path} with {auth:?}");
            assert_eq!(r.body["error"], "unauthorized");
        }
    }
    // Visitor tickets: wrong token, another conversation's token, wrong or missing origin.
    assert_eq!(visitor_ticket(ctx, &v.conv, "AAAA").status, 401);
    let other = visitor(ctx, "t-sec-site", "W", "y");
    assert_eq!(visitor_ticket(ctx, &v.conv, &other.token).status, 401);
    let ticket_from = |origin: Option<&str>| {
        let mut h = vec![("Authorization".to_string(), format!("Bearer {}", v.token))];
        if let Some(o) = origin {
            h.push(("Origin".into(), o.into()));
        }
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        http(
            "POST",
            &format!("{}/api/v1/conversations/{}/ticket", ctx.base, v.conv),
            None,
            &h,
        )
    };
    let r = ticket_from(Some("https://evil.example"));
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("origin_not_allowed"))
    );
    let r = ticket_from(None);
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("origin_missing"))
    );
    // The socket: the visitor token is not a ticket; a ticket works once, from an allowed origin.
    let r = open_ws(
        &format!(
            "{}/api/v1/conversations/{}/ws?ticket={}",
            ctx.ws, v.conv, v.token
        ),
        Some(SHOP),
    );
    assert_eq!(r.err().map(|e| e.0), Some(401));
    let good = visitor_ticket(ctx, &v.conv, &v.token).body["ticket"]
        .as_str()
        .expect("t")
        .to_owned();
    let url = format!(
        "{}/api/v1/conversations/{}/ws?ticket={good}",
        ctx.ws, v.conv
    );
    assert_eq!(
        open_ws(&url, Some("https://evil.example"))
            .err()
            .map(|e| e.0),
        Some(403)
    );
    assert!(open_ws(&url, Some(SHOP)).is_ok());
    assert_eq!(
        open_ws(&url, Some(SHOP)).err().map(|e| e.0),
        Some(401),
        "reused"
    );
    // after= past the last message is refused.
    let t2 = visitor_ticket(ctx, &v.conv, &v.token).body["ticket"]
        .as_str()
        .expect("t")
        .to_owned();
    let r = open_ws(
        &format!(
            "{}/api/v1/conversations/{}/ws?ticket={t2}&after=999",
            ctx.ws, v.conv
        ),
        Some(SHOP),
    );
    assert_eq!(r.err().map(|e| e.0), Some(400));
    let r = start_raw(
        ctx,
        "t-sec-site",
        "V",
        "x",
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("origin_not_allowed"))
    );
    assert_eq!(transcript(ctx, &v.conv, "nope").status, 401);
    // Another tenant's agent cannot touch this conversation.
    let mut o = agent(ctx, "t-other", "o");
    o.send(json!({ "type": "accept", "conversation": c }));
    o.error("unknown_conversation");
    o.send(json!({ "type": "ticket", "conversation": c }));
    o.error("unknown_conversation");
    // Chat sockets need a ticket signed for this conversation.
    for t in ["", "abc", "eyJ0ZW5hbnQiOiJ0LXNlYyJ9.00"] {
        let r = open_ws(
            &format!("{}/api/v1/conversations/{c}/agent-ws?ticket={t}", ctx.ws),
            None,
        );
        assert_eq!(r.err().map(|e| e.0), Some(401), "ticket {t:?}");
    }
    // Identity verification: a fresh user_hash works, another user's or an old one not.
    let now = chrono::Utc::now().timestamp();
    let good = tests_user_hash(SITE_SECRET, "user-42", now);
    let start_as = |user: &str, hash: &str| {
        let body = json!({ "site": "t-sec-site", "name": "Id", "text": "hi", "client_id": "i1", "user_id": user, "user_hash": hash });
        http(
            "POST",
            &format!("{}/api/v1/conversations", ctx.base),
            Some(&body),
            &[("Origin", SHOP)],
        )
    };
    assert_eq!(start_as("user-42", &good).status, 201);
    let r = start_as("user-43", &good);
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("identity_invalid"))
    );
    let old = tests_user_hash(SITE_SECRET, "user-42", now - 2 * 86_400);
    let r = start_as("user-42", &old);
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("identity_invalid"))
    );
    assert!(r.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("expired")));
    // Bad bodies name the problem.
    let r = http(
        "POST",
        &format!("{}/api/v1/conversations", ctx.base),
        Some(&json!({ "site": "t-sec-site", "name": "x" })),
        &[("Origin", SHOP)],
    );
    assert_eq!(r.status, 400);
    assert!(r.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("missing field `text`")));
    let r = start_raw(ctx, "unknown-site", "V", "x", &[]);
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (404, Some("unknown_site"))
    );
    // Visitors never see login ids: the agent's message reaches them by display name.
    a.accept(&c);
    a.say(&c, "a-1", "hello there");
    a.chat(&c)
        .wait_for("ack", T, |f| ty(f) == "ack" && f["client_id"] == "a-1");
    let tr = transcript(ctx, &v.conv, &v.token);
    let m = tr.body["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["text"] == "hello there").cloned())
        .expect("agent message");
    assert_eq!(m["author"], json!({"kind": "staff", "name": "Agent s"}));
    assert!(!tr.body.to_string().contains("\"s\""), "{}", tr.body);
}

/// Typing frames are coalesced: a burst of "typing" reaches the other side once.
/// Security headers on the console, the widget document and the API.
fn typing_and_headers(ctx: &Ctx) {
    make_tenant(ctx, "t-typing", 60, 3600, &[("ty", 3)]);
    let mut a = agent(ctx, "t-typing", "ty");
    a.available();
    let mut v = visitor(ctx, "t-typing-site", "V", "hi");
    let conv = a.wait_offer();
    a.accept(&conv);
    for _ in 0..30 {
        v.sock.send(json!({ "type": "typing", "typing": true }));
    }
    v.sock.send(json!({ "type": "typing", "typing": false }));
    let chat = a.chat(&conv);
    chat.wait_for("typing stopped", T, |f| {
        ty(f) == "typing" && f["typing"] == false
    });
    let typing: Vec<bool> = chat
        .seen
        .iter()
        .filter(|f| ty(f) == "typing")
        .filter_map(|f| f["typing"].as_bool())
        .collect();
    assert_eq!(typing, vec![true, false], "coalesced");
    // Headers.
    let get = |path: &str| match ureq::get(&format!("{}{path}", ctx.base)).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    for path in [
        "/agent/",
        "/widget/?site=t-typing-site",
        "/api/v1/health",
        "/",
    ] {
        let r = get(path);
        assert_eq!(
            r.header("X-Content-Type-Options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"), "{path}");
        let csp = r
            .header("Content-Security-Policy")
            .unwrap_or_default()
            .to_owned();
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        let want = match path {
            "/widget/?site=t-typing-site" => "frame-ancestors 'self' https://shop.example",
            _ => "frame-ancestors 'none'",
        };
        assert!(csp.contains(want), "{path}: {csp}");
    }
    // The widget's document carries the site info as a JSON data block.
    let doc = get("/widget/?site=t-typing-site")
        .into_string()
        .expect("widget document");
    let block = doc
        .split_once("<script type=\"application/json\" id=\"switchboard-site\">")
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .map(|(json, _)| json)
        .unwrap_or_else(|| panic!("no site block in {doc}"));
    let info: Value = serde_json::from_str(block).expect("site block is JSON");
    assert_eq!(info["site"], "t-typing-site", "{info}");
    assert!(info["availability"].is_object(), "{info}");
    // It preloads the wasm, but not in standby (the loader's frame before any open).
    let wasm_name = |d: &str| d.contains("<link rel=\"preload\"") && d.contains(".wasm\"");
    assert!(
        wasm_name(&doc),
        "the widget document preloads its wasm: {doc}"
    );
    let waiting = get("/widget/?site=t-typing-site&standby=1")
        .into_string()
        .expect("standby document");
    assert!(
        !wasm_name(&waiting),
        "a standby document names no wasm: {waiting}"
    );
    assert!(waiting.contains("id=\"switchboard-site\""), "{waiting}");
    // The apps' wasm, script (boot and glue, one module) and style sheet have
    // content-hashed names and are cached for good; the pages that name them are
    // revalidated.
    for app in ["widget", "agent"] {
        let manifest: Value = serde_json::from_str(
            &std::fs::read_to_string(
                tests::root().join(format!("edge/dist/{app}/pkg/manifest.json")),
            )
            .expect("manifest"),
        )
        .expect("manifest json");
        for file in ["wasm", "boot", "css"] {
            let name = manifest[file].as_str().expect("name");
            assert!(name.len() > 20, "hashed name: {name}");
            let r = get(&format!("/{app}/pkg/{name}"));
            assert_eq!(r.status(), 200, "{app}/{name}");
            assert_eq!(
                r.header("Cache-Control"),
                Some("public, max-age=31536000, immutable"),
                "{app}/{name}"
            );
        }
        let page = get(&format!("/{app}/"));
        assert!(
            !page
                .header("Cache-Control")
                .unwrap_or_default()
                .contains("immutable"),
            "{app}/ is revalidated"
        );
    }
}

/// After the end a visitor rates the chat once (1 to 5, optional comment); the rating
/// lands on the closed record, whether the wrap-up is done before or after.
fn rating(ctx: &Ctx) {
    make_tenant(ctx, "t-rating", 60, 3600, &[("rt", 3)]);
    let mut a = agent(ctx, "t-rating", "rt");
    a.available();
    let mut v = visitor(ctx, "t-rating-site", "V", "hi");
    let c = a.wait_offer();
    a.accept(&c);
    let rate = |v: &mut Visitor, score: u64, comment: &str| {
        v.sock.clear();
        v.sock
            .send(json!({ "type": "rate", "score": score, "comment": comment }));
        v.sock
            .wait_for("rating answer", T, |f| ty(f) == "rated" || ty(f) == "error")
    };
    assert_eq!(rate(&mut v, 4, "")["code"], "not_ended");
    v.sock.send(json!({ "type": "end" }));
    v.sock.wait_for("ended", T, |f| {
        ty(f) == "status" && f["status"]["status"] == "ended"
    });
    assert_eq!(rate(&mut v, 6, "")["code"], "invalid_rating");
    assert_eq!(
        rate(&mut v, 4, "quick and kind"),
        json!({ "v": 1, "type": "rated", "score": 4 })
    );
    assert_eq!(rate(&mut v, 5, "")["code"], "already_rated");
    // Rated during the wrap-up: the record written at wrap-up carries it.
    a.sock
        .wait_for("wrap-up required", T, |f| ev(f) == "wrap_up_required");
    a.send(json!({ "type": "wrap_up", "conversation": c, "reason": "solved", "next": { "state": "available" } }));
    a.sock
        .wait_for("wrap-up done", T, |f| ev(f) == "wrap_up_done");
    let h = admin(ctx);
    let url = |id: &str| {
        format!(
            "{}/api/v1/admin/tenants/t-rating/conversations/{id}",
            ctx.base
        )
    };
    let rec = http("GET", &url(&c), None, &[("Authorization", &h[0].1)]);
    assert_eq!(
        rec.body["conversation"]["rating"]["score"], 4,
        "{:?}",
        rec.body
    );
    assert_eq!(
        rec.body["conversation"]["rating"]["comment"],
        "quick and kind"
    );
    // Rated after the record exists: the record is updated.
    let mut v2 = visitor(ctx, "t-rating-site", "W", "second");
    let c2 = a.wait_offer();
    a.accept(&c2);
    a.send(json!({ "type": "end", "conversation": c2 }));
    a.sock.wait_for("wrap-up required", T, |f| {
        ev(f) == "wrap_up_required" && f["event"]["conversation"] == c2.as_str()
    });
    a.send(json!({ "type": "wrap_up", "conversation": c2, "reason": "solved", "next": { "state": "available" } }));
    a.sock.wait_for("wrap-up done", T, |f| {
        ev(f) == "wrap_up_done" && f["event"]["conversation"] == c2.as_str()
    });
    v2.sock.wait_for("ended", T, |f| {
        ty(f) == "status" && f["status"]["status"] == "ended"
    });
    assert_eq!(rate(&mut v2, 2, "")["score"], 2);
    let deadline = std::time::Instant::now() + T;
    loop {
        let r = http("GET", &url(&v2.conv), None, &[("Authorization", &h[0].1)]);
        if r.body["conversation"]["rating"]["score"] == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rating not on the record: {:?}",
            r.body
        );
    }
}

/// An admin's configuration change reaches signed-in consoles at once: a new template
/// is there (and renders) without signing in again.
fn config_reaches_consoles(ctx: &Ctx) {
    make_tenant(ctx, "t-live-cfg", 60, 3600, &[("lc", 3)]);
    let mut a = agent(ctx, "t-live-cfg", "lc");
    a.available();
    let _v = visitor(ctx, "t-live-cfg-site", "Vera", "hi");
    let c = a.wait_offer();
    a.accept(&c);
    make_tenant_with(ctx, "t-live-cfg", 60, 3600, &[("lc", 3)], |cfg| {
        cfg["config"]["templates"]
            .as_array_mut()
            .expect("templates")
            .push(json!({ "id": "bye", "name": "Goodbye", "text": "Goodbye <customer_name>!" }));
        cfg.as_object_mut().expect("cfg").remove("passwords");
    });
    let f = a.sock.wait_for("config frame", T, |f| ty(f) == "config");
    assert!(f["templates"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["id"] == "bye")));
    a.send(json!({ "type": "template", "conversation": c, "template": "bye" }));
    let t = a.sock.wait_for("template", T, |f| ty(f) == "template");
    assert_eq!(t["text"], "Goodbye Vera!");
}

/// A chat taken, ended and wrapped up: its id, the visitor and the agent.
fn closed_chat(ctx: &Ctx, tenant: &str, agent_id: &str, text: &str) -> (Visitor, Agent) {
    let mut a = agent(ctx, tenant, agent_id);
    a.available();
    let v = visitor(ctx, &format!("{tenant}-site"), "Closed", text);
    let conv = a.wait_offer();
    a.accept(&conv);
    a.send(json!({ "type": "end", "conversation": conv }));
    a.sock
        .wait_for("wrap-up required", T, |f| ev(f) == "wrap_up_required");
    a.send(json!({ "type": "wrap_up", "conversation": conv, "reason": "solved", "next": { "state": "available" } }));
    a.sock
        .wait_for("wrap-up done", T, |f| ev(f) == "wrap_up_done");
    (v, a)
}

/// Admin listings are pages that lose nothing; DELETE erases a conversation with its
/// transcript at once (a GDPR request).
fn erasure_and_pages(ctx: &Ctx) {
    make_tenant(ctx, "t-erase", 60, 3600, &[("d", 3)]);
    let (v, _a) = closed_chat(ctx, "t-erase", "d", "please forget me");
    for i in 0..4 {
        let r = http(
            "POST",
            &format!("{}/api/v1/messages", ctx.base),
            Some(&json!({ "site": "t-erase-site", "name": "Eva", "text": format!("left {i}") })),
            &[("Origin", SHOP)],
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let h = admin(ctx);
    let auth = [("Authorization", h[0].1.as_str())];
    let list = |q: &str| {
        http(
            "GET",
            &format!("{}/api/v1/admin/tenants/t-erase/conversations{q}", ctx.base),
            None,
            &auth,
        )
    };
    // Pages of 2: every record once, newest first, then no next page.
    let mut seen = vec![];
    let mut q = "?limit=2".to_string();
    loop {
        let page = list(&q);
        assert_eq!(page.status, 200, "{:?}", page.body);
        let items = page.body["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|i| i["id"].as_str().unwrap_or("").to_owned()),
        );
        match page.body["next"].as_str() {
            Some(c) => q = format!("?limit=2&cursor={c}"),
            None => break,
        }
    }
    let distinct: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), distinct.len()), (5, 5), "{seen:?}");
    assert!(seen.contains(&v.conv));
    // Erase the chat: record and transcript are gone, twice is a 404.
    let url = format!(
        "{}/api/v1/admin/tenants/t-erase/conversations/{}",
        ctx.base, v.conv
    );
    assert_eq!(http("GET", &url, None, &auth).status, 200);
    let d = http("DELETE", &url, None, &auth);
    assert_eq!(d.status, 200, "{:?}", d.body);
    assert_eq!(http("GET", &url, None, &auth).status, 404);
    assert_eq!(http("DELETE", &url, None, &auth).status, 404);
    let tr = transcript(ctx, &v.conv, &v.token);
    assert_eq!(
        (tr.status, tr.body["error"].as_str()),
        (404, Some("unknown_conversation"))
    );
    let all = list("");
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(4));
}

/// Sign-out, an admin's sign-out and a password change revoke sessions at once:
/// old tokens and old tickets are refused, open sockets close with the reason.
fn revocation(ctx: &Ctx) {
    make_tenant(ctx, "t-rev", 30, 600, &[("r", 3), ("m", 3)]);
    // Sign-out over HTTP: token and an unused ticket die with the session.
    let tok = sign_in(ctx, "t-rev", "r");
    let mut sock = agent_ws(ctx, &tok);
    let spare = control_ticket(ctx, &tok).body["ticket"]
        .as_str()
        .expect("t")
        .to_owned();
    let out = http(
        "POST",
        &format!("{}/api/v1/agent/sign-out", ctx.base),
        None,
        &[("Authorization", &format!("Bearer {tok}"))],
    );
    assert_eq!(out.status, 200, "{:?}", out.body);
    assert_eq!(
        sock.wait_closed("signed out", T),
        (4003, "signed_out".into())
    );
    assert_eq!(control_ticket(ctx, &tok).status, 401, "old token");
    let r = open_ws(&format!("{}/api/v1/agent/ws?ticket={spare}", ctx.ws), None);
    assert_eq!(r.err().map(|e| e.0), Some(401), "old ticket");
    // An admin signs an agent out: every session of theirs.
    let t1 = sign_in(ctx, "t-rev", "m");
    let t2 = sign_in(ctx, "t-rev", "m");
    let mut s1 = agent_ws(ctx, &t1);
    let h = admin(ctx);
    let r = http(
        "POST",
        &format!("{}/api/v1/admin/tenants/t-rev/agents/m/sign-out", ctx.base),
        None,
        &[("Authorization", &h[0].1)],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(s1.wait_closed("admin sign-out", T).1, "signed_out_by_admin");
    assert_eq!(control_ticket(ctx, &t1).status, 401);
    assert_eq!(control_ticket(ctx, &t2).status, 401);
    // A password change ends every session; the new password works, the old not.
    let t3 = sign_in(ctx, "t-rev", "m");
    let mut s3 = agent_ws(ctx, &t3);
    let r = http(
        "POST",
        &format!("{}/api/v1/agent/password", ctx.base),
        Some(&json!({ "current": PW, "new": "another-password-456" })),
        &[("Authorization", &format!("Bearer {t3}"))],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(s3.wait_closed("password changed", T).1, "password_changed");
    assert_eq!(control_ticket(ctx, &t3).status, 401);
    let old = http(
        "POST",
        &format!("{}/api/v1/agent/sign-in", ctx.base),
        Some(&json!({ "tenant": "t-rev", "agent": "m", "password": PW })),
        &[],
    );
    assert_eq!(old.status, 401);
    let new = http(
        "POST",
        &format!("{}/api/v1/agent/sign-in", ctx.base),
        Some(&json!({ "tenant": "t-rev", "agent": "m", "password": "another-password-456" })),
        &[],
    );
    assert_eq!(new.status, 200, "{:?}", new.body);
}

/// Visitor → agent delivery times of `n` messages on an active chat.
fn chat_latencies(v: &mut Visitor, a: &mut Agent, conv: &str, tag: &str, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let text = format!("{tag} {i}");
            let t0 = std::time::Instant::now();
            v.sock
                .send(json!({ "type": "send", "client_id": format!("{tag}-{i}"), "text": text }));
            a.chat(conv).wait_for(&text, T, |f| {
                ty(f) == "message" && f["message"]["text"] == text.as_str()
            });
            t0.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let p = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        p(0.5),
        p(0.9),
        p(1.0)
    )
}

/// 1,000 wrong passwords from 50 addresses while a chat is active.
fn sign_in_flood(ctx: &Ctx) {
    make_tenant(ctx, "t-flood-in", 60, 3600, &[("fa", 3), ("fb", 3)]);
    let mut a = agent(ctx, "t-flood-in", "fb");
    a.available();
    let mut v = visitor(ctx, "t-flood-in-site", "V", "hi");
    let conv = a.wait_offer();
    a.accept(&conv);
    let before = chat_latencies(&mut v, &mut a, &conv, "before", 15);
    let base = ctx.base.clone();
    let flood = std::thread::spawn(move || {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let base = base.clone();
                std::thread::spawn(move || {
                    let mut counts = BTreeMap::new();
                    for i in 0..125 {
                        let ip = format!("203.0.113.{}", (t * 125 + i) % 50);
                        let r = http(
                            "POST",
                            &format!("{base}/api/v1/agent/sign-in"),
                            Some(&json!({"tenant": "t-flood-in", "agent": "fa", "password": format!("guess-{t}-{i}")})),
                            &[("CF-Connecting-IP", &ip)],
                        );
                        *counts.entry(format!("{} {}", r.status, r.body["error"].as_str().unwrap_or(""))).or_insert(0) += 1;
                    }
                    counts
                })
            })
            .collect();
        let mut all = BTreeMap::new();
        for h in handles {
            for (k, n) in h.join().expect("flood thread") {
                *all.entry(k).or_insert(0) += n;
            }
        }
        all
    });
    let during = chat_latencies(&mut v, &mut a, &conv, "during", 15);
    let counts: BTreeMap<String, i32> = flood.join().expect("flood");
    println!("  sign-in flood answers: {counts:?}");
    println!("  chat delivery before the flood: {}", summary(before));
    println!("  chat delivery during the flood: {}", summary(during));
    let refused: i32 = counts
        .iter()
        .filter(|(k, _)| k.starts_with("401"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        refused < 50,
        "only the first few guesses are checked: {counts:?}"
    );
    assert_eq!(counts.values().sum::<i32>(), 1000);
    // The account is locked: even the right password waits.
    let r = http(
        "POST",
        &format!("{}/api/v1/agent/sign-in", ctx.base),
        Some(&json!({"tenant": "t-flood-in", "agent": "fa", "password": PW})),
        &[("CF-Connecting-IP", "198.51.100.99")],
    );
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (429, Some("too_many_attempts")),
        "{:?}",
        r.body
    );
    assert!(r.retry_after.is_some());
    // An admin lifts the lockout: the right password works at once.
    let unlock = |agent: &str| {
        http(
            "POST",
            &format!(
                "{}/api/v1/admin/tenants/t-flood-in/agents/{agent}/unlock",
                ctx.base
            ),
            None,
            &[("Authorization", &admin(ctx)[0].1)],
        )
    };
    assert_eq!(unlock("fa").status, 200);
    assert_eq!(unlock("nobody").status, 404);
    let r = http(
        "POST",
        &format!("{}/api/v1/agent/sign-in", ctx.base),
        Some(&json!({"tenant": "t-flood-in", "agent": "fa", "password": PW})),
        &[("CF-Connecting-IP", "198.51.100.98")],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
}

fn rate_limits(ctx: &Ctx, start_limit: u32) {
    make_tenant(ctx, "t-rate", 30, 600, &[("q", 20)]);
    let _a = agent(ctx, "t-rate", "q");
    let mut last = None;
    for _ in 0..=start_limit {
        last = Some(start_raw(ctx, "t-rate-site", "V", "x", &[]));
        if last.as_ref().is_some_and(|r| r.status == 429) {
            break;
        }
    }
    let r = last.expect("answers");
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(r.body["error"], "rate_limited");
    assert!(r
        .retry_after
        .as_deref()
        .and_then(|s| s.parse::<u32>().ok())
        .is_some_and(|s| (1..=60).contains(&s)));
}

fn visitor_rate_limit(ctx: &Ctx, per_minute: u32) {
    make_tenant(ctx, "t-vrate", 30, 600, &[("w", 3)]);
    let _a = agent(ctx, "t-vrate", "w");
    let mut v = visitor(ctx, "t-vrate-site", "V", "x");
    for i in 0..=per_minute {
        v.sock
            .send(json!({ "type": "send", "client_id": format!("f{i}"), "text": "flood" }));
    }
    let e = v.sock.wait_for("rate limited", T, |f| {
        ty(f) == "error" && f["code"] == "rate_limited"
    });
    assert!(e["message"]
        .as_str()
        .is_some_and(|m| m.contains("retry in")));
}

fn leave_message(ctx: &Ctx) {
    make_tenant(ctx, "t-leave", 30, 600, &[("l", 3)]);
    let info = http(
        "GET",
        &format!("{}/api/v1/sites/t-leave-site", ctx.base),
        None,
        &[("Origin", SHOP)],
    );
    assert_eq!(info.body["availability"]["availability"], "no_agents");
    let r = start_raw(ctx, "t-leave-site", "V", "x", &[]);
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (503, Some("no_agents_signed_in"))
    );
    let r = http(
        "POST",
        &format!("{}/api/v1/messages", ctx.base),
        Some(
            &json!({ "site": "t-leave-site", "name": "Eva", "email": "eva@example.com", "text": "Please call me" }),
        ),
        &[("Origin", SHOP)],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let list = closed_list(ctx, "t-leave");
    let rec = list
        .body
        .as_array()
        .and_then(|l| l.first().cloned())
        .expect("left message listed");
    assert_eq!(rec["kind"], "left_message");
    assert_eq!(rec["message"], "Please call me");
    // Agents see left messages too.
    let mut a = agent(ctx, "t-leave", "l");
    a.send(json!({ "type": "left_messages" }));
    let l = a
        .sock
        .wait_for("left messages", T, |f| ty(f) == "left_messages");
    assert_eq!(l["messages"][0]["message"], "Please call me");
    assert_eq!(l["messages"][0]["customer"]["email"], "eva@example.com");
}

/// Kill and restart wrangler mid-conversation: nothing acknowledged is lost,
/// deadlines fire after the restart, clients reconnect and resume.
fn restart(server: &mut Server, ctx: &Ctx) {
    make_tenant(ctx, "t-rst", 3, 600, &[("k", 3), ("p", 3)]);
    let mut k = agent(ctx, "t-rst", "k");
    k.available();
    let mut v = visitor(ctx, "t-rst-site", "Eva", "before restart");
    let c = k.wait_offer();
    k.accept(&c);
    let s = v.say("b1", "acknowledged before the kill");
    k.say(&c, "k1", "agent before the kill");
    k.chat(&c)
        .wait_for("ack", T, |f| ty(f) == "ack" && f["client_id"] == "k1");
    // A second chat has a pending offer to p whose deadline passes while the service is down.
    let mut p = agent(ctx, "t-rst", "p");
    p.available();
    let v2 = visitor(ctx, "t-rst-site", "Second", "pending");
    assert_eq!(p.wait_offer(), v2.conv);
    let p_token = p.token.clone();
    server.restart();
    // Visitor resumes from what it saw; everything acknowledged is there.
    let mut vs = visitor_ws(ctx, &v.conv, &v.token, s);
    vs.wait_for("agent message after restart", T, |f| {
        ty(f) == "message" && f["message"]["text"] == "agent before the kill"
    });
    let tr = transcript(ctx, &v.conv, &v.token);
    let texts: Vec<String> = tr.body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect();
    assert!(
        texts.contains(&"acknowledged before the kill".to_string())
            && texts.contains(&"before restart".to_string()),
        "{texts:?}"
    );
    // The agent reconnects with the same session: the chat is still theirs.
    let ks = agent_ws(ctx, &k.token);
    let snap = ks.seen[0].clone();
    assert!(
        snap["snapshot"]["chats"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|x| x["conversation"] == c.as_str())),
        "{snap}"
    );
    // The expired offer's alarm fired after the restart: p is in RONA, the chat is back in the queue.
    let mut ps = agent_ws(ctx, &p_token);
    let st = ps.seen[0]["snapshot"]["state"]["state"]
        .as_str()
        .map(str::to_owned);
    if st.as_deref() != Some("rona") {
        ps.wait_for("RONA after restart", T, |f| {
            ev(f) == "state" && f["event"]["state"]["state"] == "rona"
        });
    }
    let ticket = snap["tickets"][c.as_str()]
        .as_str()
        .expect("snapshot carries a chat ticket")
        .to_owned();
    let mut kc = chat_ws(&ctx.ws, &c, &ticket, 0).expect("chat socket after restart");
    kc.send(json!({ "type": "send", "client_id": "k2", "text": "after restart" }));
    vs.wait_for("live again", T, |f| {
        ty(f) == "message" && f["message"]["text"] == "after restart"
    });
}

fn tests_hmac(payload: &str) -> String {
    tests_mac(tests::SESSION_SECRET, payload)
}

fn tests_user_hash(secret: &str, user: &str, ts: i64) -> String {
    format!("{ts}.{}", tests_mac(secret, &format!("{user}:{ts}")))
}

fn tests_mac(secret: &str, msg: &str) -> String {
    use hmac::Mac;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    m.update(msg.as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs `tests/browser/SCRIPT` with the service's base URL, the screenshot folder
/// (`tests/out`) and `args`; fails when the script does.
fn browser_script(ctx: &Ctx, script: &str, args: &[&str]) {
    let st = std::process::Command::new("node")
        .arg(tests::root().join("tests/browser").join(script))
        .arg(&ctx.base)
        .arg(tests::root().join("tests/out"))
        .args(args)
        .current_dir(tests::root())
        .status()
        .expect("node");
    assert!(st.success(), "browser test {script} failed");
}

fn main() {
    let start_limit = 20u32;
    let visitor_limit = 40u32;
    let mut server = Server::start(&[
        ("RATE_START_PER_MINUTE", &start_limit.to_string()),
        ("RATE_VISITOR_PER_MINUTE", &visitor_limit.to_string()),
        ("WEBHOOK_RETRY_BASE_SECS", "1"),
        ("WEBHOOK_MAX_ATTEMPTS", "3"),
    ]);
    println!(
        "e2e: wrangler dev on {} (log {})",
        server.base(),
        server.log.display()
    );
    let ctx = Ctx {
        base: server.base(),
        ws: server.ws_base(),
    };
    let mut failed = vec![];
    // E2E_ONLY=TEXT runs only the scenarios whose names contain TEXT (development).
    let only = std::env::var("E2E_ONLY").ok();
    let mut run = |name: &str, f: &dyn Fn()| {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            return;
        }
        let t0 = std::time::Instant::now();
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => println!("ok   {name} ({:.1} s)", t0.elapsed().as_secs_f64()),
            Err(_) => {
                println!("FAIL {name}");
                failed.push(name.to_owned());
            }
        }
    };
    run("walking skeleton on the demo tenant", &|| {
        walking_skeleton_demo(&ctx)
    });
    run(
        "offer timeout → RONA → front of queue → next agent",
        &|| rona_and_front_of_queue(&ctx),
    );
    run("capacity, wrap-up, closed record", &|| {
        capacity_and_wrap_up(&ctx)
    });
    run(
        "transfer to agent (accepted, refused, not accepted) and to queue",
        &|| transfers(&ctx),
    );
    run("conference requested, accepted, ended, timed out", &|| {
        conference(&ctx)
    });
    run("end by visitor and by inactivity", &|| ends(&ctx));
    run("message rules, templates, malformed frames", &|| {
        message_rules_and_templates(&ctx)
    });
    run("resume after a dropped socket, resend stored once", &|| {
        resume_and_dedup(&ctx)
    });
    run("double accept race (15 rounds)", &|| {
        double_accept_race(&ctx)
    });
    run(
        "auth, foreign tenant, origins, identity verification",
        &|| security(&ctx),
    );
    run("typing coalesced; security headers", &|| {
        typing_and_headers(&ctx)
    });
    run("rating after the end, on the closed record", &|| {
        rating(&ctx)
    });
    run("config changes reach signed-in consoles", &|| {
        config_reaches_consoles(&ctx)
    });
    run("erasure (GDPR) and paginated admin listings", &|| {
        erasure_and_pages(&ctx)
    });
    run(
        "revocation: sign-out, admin sign-out, password change",
        &|| revocation(&ctx),
    );
    run(
        "bad-input corpus (tests/corpus): refused, nothing changed",
        &|| corpus::corpus(&ctx),
    );
    run(
        "sign-in flood: chat latency before and during, account locks",
        &|| sign_in_flood(&ctx),
    );
    run(
        "webhooks: signed, retried, dead-lettered, retried by the admin",
        &|| centre::webhooks(&ctx),
    );
    run(
        "export: NDJSON and CSV hold every closed chat of the range",
        &|| centre::export(&ctx),
    );
    run(
        "supervisor: live queue and agent counts, read-only look, sign-out",
        &|| centre::supervisor(&ctx),
    );
    run(
        "customer context: pages, browser, time zone, earlier conversations",
        &|| centre::customer_context(&ctx),
    );
    run(
        "attachments: R2, sniffed types, sizes, names, access, resend once",
        &|| centre::attachments(&ctx),
    );
    run(
        "agent pictures: uploaded, named in the config, served, refused by name",
        &|| centre::avatars(&ctx),
    );
    run("leave a message when nobody is signed in", &|| {
        leave_message(&ctx)
    });
    run("visitor rate limit", &|| {
        visitor_rate_limit(&ctx, visitor_limit)
    });
    run(
        "agent chat socket closed: every message once, in order; outbox resend stored once",
        &|| delivery::agent_socket_closed(&ctx),
    );
    run(
        "maximum wait ends a queued chat; leave a message; full queue refused",
        &|| delivery::maximum_wait(&ctx),
    );
    run(
        "browser: demo page ↔ agent console in headless Chromium",
        &|| {
            browser_script(&ctx, "chat.mjs", &[]);
        },
    );
    run(
        "browser: the chat tag on a listed and an unlisted origin",
        &|| {
            let host = ctx.base.replace("127.0.0.1", "localhost");
            make_tenant_with(&ctx, "t-embed", 60, 3600, &[("e", 3)], |c| {
                c["config"]["sites"][0]["allowed_origins"] = json!([host]);
                c["config"]["sites"][0]["accent"] = json!("#0f7b6c");
            });
            make_tenant(&ctx, "t-embed-x", 60, 3600, &[("x", 3)]);
            let mut e = agent(&ctx, "t-embed", "e");
            e.available();
            let mut x = agent(&ctx, "t-embed-x", "x");
            x.available();
            // Its agent signs in during the test (in the browser).
            make_tenant_with(&ctx, "t-embed-late", 60, 3600, &[("late", 3)], |c| {
                c["config"]["sites"][0]["allowed_origins"] = json!([host]);
            });
            browser_script(
                &ctx,
                "origins.mjs",
                &["t-embed-site", "t-embed-x-site", "t-embed-late-site"],
            );
            // The listed page's chat reached the agent.
            e.wait_offer();
        },
    );
    run(
        "browser: admin console edits a template; supervisor screen live; axe",
        &|| centre::browser(&ctx),
    );
    run("per-IP rate limit on starts", &|| {
        rate_limits(&ctx, start_limit)
    });
    let mut run_restart = || {
        let t0 = std::time::Instant::now();
        match catch_unwind(AssertUnwindSafe(|| restart(&mut server, &ctx))) {
            Ok(()) => println!(
                "ok   kill and restart of wrangler mid-conversation ({:.1} s)",
                t0.elapsed().as_secs_f64()
            ),
            Err(_) => {
                println!("FAIL kill and restart of wrangler mid-conversation");
                failed.push("restart".into());
            }
        }
    };
    // The second server's scenarios run in full runs, or alone with
    // E2E_ONLY="second server".
    if only.as_deref().is_none_or(|o| o == "second server") {
        run_restart();
        drop(server);
        delivery::run_all(&mut failed);
    }
    if failed.is_empty() {
        println!("e2e: all scenarios passed");
    } else {
        println!("e2e: {} failed: {failed:?}", failed.len());
        std::process::exit(1);
    }
}
