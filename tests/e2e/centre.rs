//! Scenarios of the contact centre around the chat: webhooks through the queue
//! (signature, payload, retries, dead letters), the export of closed conversations,
//! and the supervisor's live view.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{mpsc, Arc, Mutex};
use tests::http_raw;

pub(crate) const HOOK_SECRET: &str = "hook-secret-hook-secret-hook-secret!";

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub status: u16,
}

/// A local webhook receiver: answers 500 to the first `fail` requests of each path
/// (and always on paths listed in `down`), 200 otherwise; reports every request.
pub(crate) struct Receiver {
    port: u16,
    hits: mpsc::Receiver<Hit>,
    down: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    pub(crate) fn start(fail: usize) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let (tx, hits) = mpsc::channel();
        let down = Arc::new(Mutex::new(Vec::<String>::new()));
        let down2 = down.clone();
        std::thread::spawn(move || {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for s in l.incoming().flatten() {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut r = BufReader::new(s);
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                let mut headers = BTreeMap::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                    }
                }
                let n: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; n];
                let _ = r.read_exact(&mut body);
                let count = seen.entry(path.clone()).or_default();
                *count += 1;
                let failing = *count <= fail || down2.lock().expect("lock").contains(&path);
                let status = if failing { 500 } else { 200 };
                let mut s = r.into_inner();
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = tx.send(Hit {
                    path,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                    status,
                });
            }
        });
        Receiver { port, hits, down }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next request to `path` (others are kept in `other`), within `d`.
    pub(crate) fn next(&self, path: &str, d: Duration, other: &mut Vec<Hit>) -> Hit {
        let deadline = std::time::Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.hits.recv_timeout(left) {
                Ok(h) if h.path == path => return h,
                Ok(h) => other.push(h),
                Err(_) => panic!("no webhook request to {path} within {d:?}; others: {other:?}"),
            }
        }
    }
}

pub(crate) fn check_signature(h: &Hit) {
    let sig = &h.headers["x-switchboard-signature"];
    let (t, v1) = sig
        .strip_prefix("t=")
        .and_then(|r| r.split_once(",v1="))
        .unwrap_or_else(|| panic!("signature header {sig:?}"));
    assert_eq!(
        tests_mac(HOOK_SECRET, &format!("{t}.{}", h.body)),
        v1,
        "the signature verifies"
    );
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().expect("timestamp");
    assert!(age.abs() < 300, "signed now ({age} s)");
}

/// Webhooks: a closed chat reaches a receiver that fails twice (three attempts, one
/// delivery id, a valid signature on each); a left message to a receiver that is
/// down ends in the dead-letter list, and an admin's retry delivers it.
pub fn webhooks(ctx: &Ctx) {
    let rx = Receiver::start(2);
    let h = admin(ctx);
    let auth = [("Authorization", h[0].1.as_str())];
    // Refused: webhooks without a secret, and a plain-http URL that is not local.
    let put = |tenant: &str, body: Value| {
        http(
            "PUT",
            &format!("{}/api/v1/admin/tenants/{tenant}/config", ctx.base),
            Some(&body),
            &auth,
        )
    };
    let base_cfg = |hooks: Value| {
        json!({
            "config": {
                "name": "Hooks", "sites": [{ "key": "t-hooks-site", "name": "S", "allowed_origins": [SHOP], "queue": "q1" }],
                "queues": [{ "id": "q1", "name": "Support", "offer_timeout_secs": 30, "inactivity_timeout_secs": 600 }],
                "agents": [{ "id": "wh", "name": "Agent wh", "queues": ["q1"] }],
                "wrap_up_reasons": [{ "id": "solved", "label": "Solved" }],
                "webhooks": hooks
            },
            "passwords": { "wh": PW }
        })
    };
    let r = put("t-hooks", base_cfg(json!([{ "url": rx.url("/closed") }])));
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("webhook_secret"));
    let mut bad = base_cfg(json!([{ "url": "http://crm.example/h" }]));
    bad["webhook_secret"] = json!(HOOK_SECRET);
    let r = put("t-hooks", bad);
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("https"));
    let mut short = base_cfg(json!([]));
    short["webhook_secret"] = json!("short");
    assert_eq!(put("t-hooks", short).status, 400);

    let mut good = base_cfg(json!([
        { "url": rx.url("/closed"), "events": ["conversation.closed"] },
        { "url": rx.url("/left"), "events": ["message.left"] }
    ]));
    good["webhook_secret"] = json!(HOOK_SECRET);
    let r = put("t-hooks", good);
    assert_eq!(r.status, 200, "{:?}", r.body);

    // A chat, ended and wrapped up.
    let mut a = agent(ctx, "t-hooks", "wh");
    a.available();
    let mut v = visitor(ctx, "t-hooks-site", "Hook Visitor", "first words");
    let c = a.wait_offer();
    a.accept(&c);
    v.say("h1", "where is my parcel?");
    a.send(json!({ "type": "end", "conversation": c }));
    a.sock
        .wait_for("wrap-up required", T, |f| ev(f) == "wrap_up_required");
    a.send(json!({ "type": "wrap_up", "conversation": c, "reason": "solved", "next": { "state": "available" } }));
    let mut other = vec![];
    let wait = Duration::from_secs(30);
    let first = rx.next("/closed", wait, &mut other);
    let second = rx.next("/closed", wait, &mut other);
    let third = rx.next("/closed", wait, &mut other);
    assert_eq!(
        (first.status, second.status, third.status),
        (500, 500, 200),
        "failed twice, then delivered"
    );
    let id = &first.headers["x-switchboard-delivery"];
    for hit in [&first, &second, &third] {
        assert_eq!(
            &hit.headers["x-switchboard-delivery"], id,
            "one delivery id across retries"
        );
        assert_eq!(hit.headers["x-switchboard-event"], "conversation.closed");
        check_signature(hit);
    }
    let p: Value = serde_json::from_str(&third.body).expect("json body");
    assert_eq!(p["event"], "conversation.closed");
    assert_eq!(p["tenant"], "t-hooks");
    assert_eq!(p["conversation"]["id"], c.as_str());
    assert_eq!(p["conversation"]["customer"]["name"], "Hook Visitor");
    assert_eq!(p["conversation"]["wrap_ups"][0]["reason"], "solved");
    assert!(p["conversation"]["wait_secs"].is_number());
    assert!(p["conversation"]["handle_secs"].is_number());
    let texts: Vec<&str> = p["transcript"]
        .as_array()
        .expect("transcript")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(texts.contains(&"where is my parcel?"), "{texts:?}");

    // A left message, to a receiver that stays down: dead letter, then a retry.
    rx.down.lock().expect("lock").push("/left".into());
    let r = http(
        "POST",
        &format!("{}/api/v1/messages", ctx.base),
        Some(&json!({ "site": "t-hooks-site", "name": "Lea", "text": "call me back" })),
        &[("Origin", SHOP)],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let left_id = r.body["id"].as_str().expect("id").to_owned();
    for _ in 0..3 {
        assert_eq!(rx.next("/left", wait, &mut other).status, 500);
    }
    let dead_url = format!("{}/api/v1/admin/tenants/t-hooks/webhooks/dead", ctx.base);
    let deadline = std::time::Instant::now() + wait;
    let dead = loop {
        // The dead letter is written right after the last attempt's answer.
        let d = http("GET", &dead_url, None, &auth);
        if let Some(item) = d.body["items"].as_array().and_then(|l| l.first()) {
            break item.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter: {:?}",
            d.body
        );
        let _ = rx
            .hits
            .recv_timeout(Duration::from_millis(200))
            .map(|h| other.push(h));
    };
    assert_eq!(dead["job"]["conversation"], left_id.as_str());
    assert_eq!(dead["job"]["event"], "message.left");
    assert_eq!(dead["job"]["attempt"], 3);
    assert_eq!(dead["job"]["last_error"], "HTTP 500");
    assert!(
        other.iter().all(|h| h.path != "/closed"),
        "the closed chat went once: {other:?}"
    );
    rx.down.lock().expect("lock").clear();
    let job = dead["job"]["id"].as_str().expect("job id");
    let r = http("POST", &format!("{dead_url}/{job}/retry"), None, &auth);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let ok = rx.next("/left", wait, &mut other);
    assert_eq!(ok.status, 200);
    check_signature(&ok);
    let p: Value = serde_json::from_str(&ok.body).expect("json");
    assert_eq!(p["conversation"]["message"], "call me back");
    let d = http("GET", &dead_url, None, &auth);
    assert_eq!(d.body["items"], json!([]), "the retried job left the list");
    let r = http("POST", &format!("{dead_url}/nope/retry"), None, &auth);
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (404, Some("unknown_delivery"))
    );
}

/// The export holds every closed conversation of the range, in both formats, and
/// agrees with the paginated listing; a bad range is refused by name.
pub fn export(ctx: &Ctx) {
    make_tenant(ctx, "t-export", 30, 600, &[("ex", 5)]);
    let h = admin(ctx);
    let auth = [("Authorization", h[0].1.as_str())];
    let mut ids = vec![];
    for i in 0..5 {
        let r = http(
            "POST",
            &format!("{}/api/v1/messages", ctx.base),
            Some(
                &json!({ "site": "t-export-site", "name": format!("N{i}, \"quoted\""), "text": format!("=cmd {i}") }),
            ),
            &[("Origin", SHOP)],
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        ids.push(r.body["id"].as_str().expect("id").to_owned());
    }
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (
        today.pred_opt().expect("day"),
        today.succ_opt().expect("day"),
    );
    let url = |q: &str| format!("{}/api/v1/admin/tenants/t-export/export?{q}", ctx.base);
    let text = |q: &str| {
        let r = ureq::get(&url(q))
            .set("Authorization", &h[0].1)
            .call()
            .unwrap_or_else(|e| panic!("export {q}: {e}"));
        assert_eq!(r.status(), 200);
        (r.content_type().to_owned(), r.into_string().expect("body"))
    };
    let (ct, nd) = text(&format!("from={from}&to={to}"));
    assert!(ct.starts_with("application/x-ndjson"), "{ct}");
    let mut got: Vec<String> = nd
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("one JSON record per line")["id"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want, "every closed conversation of the range");
    // The listing, page by page, agrees.
    let mut listed = vec![];
    let mut cursor = String::new();
    loop {
        let r = http(
            "GET",
            &format!(
                "{}/api/v1/admin/tenants/t-export/conversations?limit=2&from={from}&to={to}&cursor={cursor}",
                ctx.base
            ),
            None,
            &auth,
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
        for i in r.body["items"].as_array().expect("items") {
            listed.push(i["id"].as_str().expect("id").to_owned());
        }
        match r.body["next"].as_str() {
            Some(n) => cursor = n.to_owned(),
            None => break,
        }
    }
    listed.sort();
    assert_eq!(listed, want);
    let (ct, csv) = text(&format!("from={from}&to={to}&format=csv"));
    assert!(ct.starts_with("text/csv"), "{ct}");
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 6, "header and five rows: {csv}");
    assert!(lines[0].starts_with("id,kind,site,"));
    assert!(
        csv.contains("\"N0, \"\"quoted\"\"\""),
        "quoted names: {csv}"
    );
    assert!(csv.contains(",'=cmd 0"), "formula guarded: {csv}");
    // A range in the past is empty; bad ranges are refused by name.
    let (_, empty) = text("from=2020-01-01&to=2020-01-02");
    assert_eq!(empty, "");
    for (q, word) in [
        ("to=2020-01-02", "from"),
        ("from=2020-01-02&to=2020-01-01", "before"),
        ("from=yesterday&to=2020-01-01", "from="),
        (&format!("from={from}&to={to}&format=xml") as &str, "format"),
    ] {
        let r = http("GET", &url(q), None, &auth);
        assert_eq!(r.status, 400, "{q}: {:?}", r.body);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap_or_default()
                .contains(word),
            "{q}: {:?}",
            r.body
        );
    }
    assert_eq!(
        http("GET", &url(&format!("from={from}&to={to}")), None, &[]).status,
        401
    );
}

/// The supervisor's live view: a visitor queues up, an offer goes out, RONA, an
/// accept, a read-only look into the chat, the end; the counts are right at each
/// step. Then the supervisor signs the agent out.
pub fn supervisor(ctx: &Ctx) {
    make_tenant_with(ctx, "t-super", 2, 600, &[("sv", 3), ("ag", 2)], |c| {
        c["config"]["agents"][0]["role"] = json!("supervisor");
    });
    let mut sv = agent(ctx, "t-super", "sv");
    let mut ag = agent(ctx, "t-super", "ag");
    ag.send(json!({ "type": "supervise" }));
    ag.error("not_supervisor");
    ag.send(json!({ "type": "sign_out_agent", "agent": "sv" }));
    ag.error("not_supervisor");
    sv.send(json!({ "type": "supervise" }));
    let view = |sv: &mut Agent, what: &str, f: &dyn Fn(&Value, &Value, &Value) -> bool| {
        let frame = sv.sock.wait_for(what, T, |v| {
            if ty(v) != "supervisor" {
                return false;
            }
            let view = &v["view"];
            let q1 = &view["queues"][0];
            let ag = view["agents"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["id"] == "ag"))
                .cloned()
                .unwrap_or_default();
            f(view, q1, &ag)
        });
        frame["view"].clone()
    };
    let v0 = view(&mut sv, "first view", &|_, q, _| q["waiting"] == 0);
    assert_eq!(v0["queues"][0]["name"], "Support");
    assert_eq!(v0["agents"][1]["capacity"], 2);

    let mut v = visitor(ctx, "t-super-site", "Vera", "hello");
    let w = view(&mut sv, "visitor queued", &|view, q, _| {
        q["waiting"] == 1 && q["open"] == 1 && view["chats"][0]["place"] == "queued"
    });
    assert_eq!(w["queues"][0]["offers_pending"], 0);
    assert_eq!(w["chats"][0]["customer_name"], "Vera");
    ag.available();
    let c = ag.wait_offer();
    view(&mut sv, "offer out", &|view, q, _| {
        q["offers_pending"] == 1 && q["waiting"] == 1 && view["chats"][0]["place"] == "offered"
    });
    // Nobody accepts within 2 s: RONA.
    let r = view(&mut sv, "RONA", &|_, q, a| {
        a["state"]["state"] == "rona" && q["offers_pending"] == 0
    });
    let ag_row = r["agents"][1].clone();
    assert_eq!(ag_row["ronas_today"], 1, "{ag_row}");
    assert!(ag_row["since"].is_string(), "since when: {ag_row}");
    assert_eq!(r["queues"][0]["waiting"], 1, "still waiting after the RONA");
    ag.available();
    assert_eq!(ag.wait_offer(), c);
    ag.accept(&c);
    view(&mut sv, "accepted", &|view, q, a| {
        q["waiting"] == 0
            && q["open"] == 1
            && a["chats"] == 1
            && view["chats"][0]["place"] == "active"
    });

    // Read-only look into the live chat.
    sv.send(json!({ "type": "observe", "conversation": c }));
    let o = sv
        .sock
        .wait_for("observer ticket", T, |f| ty(f) == "observe");
    let ticket = o["ticket"].as_str().expect("ticket");
    let url = format!(
        "{}/api/v1/conversations/{c}/agent-ws?ticket={ticket}&after=0",
        ctx.ws
    );
    let mut look = open_ws(&url, None).expect("observer socket");
    let welcome = look.wait_for("welcome", T, |f| ty(f) == "welcome");
    assert_eq!(welcome["can_write"], false);
    look.wait_for("the thread so far", T, |f| {
        ty(f) == "message" && f["message"]["text"] == "hello"
    });
    v.say("s1", "need help with my order");
    look.wait_for("live message", T, |f| {
        ty(f) == "message" && f["message"]["text"] == "need help with my order"
    });
    look.send(json!({ "type": "send", "client_id": "sv1", "text": "psst" }));
    look.wait_for("read only", T, |f| {
        ty(f) == "error" && f["code"] == "not_participant"
    });
    // A plain agent gets no observer ticket.
    ag.send(json!({ "type": "observe", "conversation": c }));
    ag.error("not_supervisor");

    ag.send(json!({ "type": "end", "conversation": c }));
    ag.sock
        .wait_for("wrap-up required", T, |f| ev(f) == "wrap_up_required");
    ag.send(json!({ "type": "wrap_up", "conversation": c, "reason": "solved", "next": { "state": "available" } }));
    let done = view(&mut sv, "closed", &|view, q, _| {
        q["closed_today"] == 1 && q["open"] == 0 && view["today"]["chats"] == 1
    });
    assert_eq!(done["today"]["answered"], 1);
    assert!(
        done["today"]["wait_secs_total"].as_i64().expect("wait") >= 2,
        "waited through a RONA"
    );
    assert_eq!(done["chats"], json!([]));

    sv.send(json!({ "type": "sign_out_agent", "agent": "ag" }));
    assert_eq!(
        ag.sock.wait_closed("signed out", T).1,
        "signed_out_by_supervisor"
    );
    view(&mut sv, "agent signed out", &|_, _, a| {
        a["state"]["state"] == "signed_out"
    });
}

/// The admin and supervisor screens in headless Chromium (`tests/browser/centre.mjs`).
pub fn browser(ctx: &Ctx) {
    make_tenant_with(ctx, "t-centre", 30, 600, &[("boss", 3), ("ag", 3)], |c| {
        c["config"]["agents"][0]["role"] = json!("admin");
        c["config"]["webhooks"] = json!([{ "url": "https://crm.example/hooks" }]);
        c["webhook_secret"] = json!(HOOK_SECRET);
    });
    browser_script(ctx, "centre.mjs", &["t-centre", "t-centre-site", SHOP]);
}

/// The customer context: pages the widget reports reach the agent's chat socket
/// (bad ones refused by name), and earlier conversations of the same email are listed
/// with their transcript — not those of another customer.
pub fn customer_context(ctx: &Ctx) {
    make_tenant(ctx, "t-context", 30, 600, &[("cx", 3)]);
    let mut a = agent(ctx, "t-context", "cx");
    a.available();
    // An earlier chat of eva@example.com, closed.
    let start = |name: &str, email: &str, text: &str| {
        let r = http(
            "POST",
            &format!("{}/api/v1/conversations", ctx.base),
            Some(
                &json!({ "site": "t-context-site", "name": name, "email": email, "text": text, "client_id": "first" }),
            ),
            &[("Origin", SHOP)],
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        (
            r.body["conversation"].as_str().expect("id").to_owned(),
            r.body["token"].as_str().expect("token").to_owned(),
        )
    };
    let (first, _) = start("Eva", "Eva@Example.com", "my first question");
    assert_eq!(a.wait_offer(), first);
    a.accept(&first);
    a.send(json!({ "type": "end", "conversation": first }));
    a.sock
        .wait_for("wrap-up required", T, |f| ev(f) == "wrap_up_required");
    a.send(json!({ "type": "wrap_up", "conversation": first, "reason": "solved", "next": { "state": "available" } }));
    a.sock
        .wait_for("wrap-up done", T, |f| ev(f) == "wrap_up_done");
    let (other, _) = start("Mallory", "mallory@example.com", "someone else");
    assert_eq!(a.wait_offer(), other);
    a.accept(&other);
    a.send(json!({ "type": "end", "conversation": other }));
    a.sock.wait_for("wrap-up required", T, |f| {
        ev(f) == "wrap_up_required" && f["event"]["conversation"] == other.as_str()
    });
    a.send(json!({ "type": "wrap_up", "conversation": other, "reason": "solved", "next": { "state": "available" } }));
    a.sock.wait_for("wrap-up done", T, |f| {
        ev(f) == "wrap_up_done" && f["event"]["conversation"] == other.as_str()
    });

    // Eva comes back.
    let (c, token) = start("Eva", "eva@example.com", "me again");
    let mut v = Visitor {
        sock: visitor_ws(ctx, &c, &token, 0),
        conv: c.clone(),
        token,
    };
    assert_eq!(a.wait_offer(), c);
    a.accept(&c);
    v.sock.send(json!({ "type": "page", "url": "https://shop.example/cart", "title": "Cart", "time_zone": "Europe/Berlin" }));
    let info = a.chat(&c).wait_for("visitor info", T, |f| {
        ty(f) == "visitor" && f["info"]["pages"].as_array().is_some_and(|p| !p.is_empty())
    });
    assert_eq!(info["info"]["pages"][0]["url"], "https://shop.example/cart");
    assert_eq!(info["info"]["time_zone"], "Europe/Berlin");
    assert!(info["info"]["browser"].is_string());
    v.sock.send(
        json!({ "type": "page", "url": "https://shop.example/checkout", "title": "Checkout" }),
    );
    a.chat(&c).wait_for("second page", T, |f| {
        ty(f) == "visitor" && f["info"]["pages"][1]["url"] == "https://shop.example/checkout"
    });
    v.sock
        .send(json!({ "type": "page", "url": "javascript:alert(1)" }));
    let e = v.sock.wait_for("bad page", T, |f| {
        ty(f) == "error" && f["code"] == "invalid_page"
    });
    assert!(
        e["message"].as_str().unwrap_or_default().contains("url"),
        "{e}"
    );

    a.send(json!({ "type": "history", "conversation": c }));
    let h = a.sock.wait_for("history", T, |f| ty(f) == "history");
    let ids: Vec<&str> = h["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec![first.as_str()],
        "only Eva's earlier chat (email matched case-insensitively)"
    );
    a.send(json!({ "type": "past_transcript", "conversation": c, "id": first }));
    let t = a
        .sock
        .wait_for("past transcript", T, |f| ty(f) == "past_transcript");
    assert!(t["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .any(|m| m["text"] == "my first question"));
    // Another customer's transcript is refused.
    a.send(json!({ "type": "past_transcript", "conversation": c, "id": other }));
    a.error("not_same_customer");
}

/// A tiny file that sniffs as PNG.
pub(crate) fn png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend((0..200u8).collect::<Vec<_>>());
    b
}

/// Raw GET with the answer's headers and bytes.
pub(crate) fn fetch(
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let mut req = ureq::get(url).timeout(Duration::from_secs(30));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = resp.status();
    let h = resp
        .headers_names()
        .into_iter()
        .filter_map(|n| Some((n.to_ascii_lowercase(), resp.header(&n)?.to_owned())))
        .collect();
    let mut body = vec![];
    let _ = resp.into_reader().read_to_end(&mut body);
    (status, h, body)
}

/// Attachments: a visitor's image and an agent's PDF go through R2 to the other side;
/// downloads need the chat's credentials and come as attachments with `nosniff`; the
/// type is sniffed (SVG, HTML named .png refused), sizes and names are checked, and a
/// resend is stored once.
pub fn attachments(ctx: &Ctx) {
    make_tenant(ctx, "t-files", 30, 600, &[("fa", 3)]);
    make_tenant(ctx, "t-files-x", 30, 600, &[("fx", 3)]);
    let mut a = agent(ctx, "t-files", "fa");
    a.available();
    let mut v = visitor(ctx, "t-files-site", "Fia", "see the photo");
    let c = a.wait_offer();
    a.accept(&c);
    let up = |name: &str, cid: &str, body: &[u8], auth: &str, origin: bool| {
        let url = format!(
            "{}/api/v1/conversations/{c}/attachments?name={}&client_id={cid}",
            ctx.base,
            name.replace(' ', "%20").replace('/', "%2F")
        );
        let bearer = format!("Bearer {auth}");
        let mut h = vec![
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/octet-stream"),
        ];
        if origin {
            h.push(("Origin", SHOP));
        }
        http_raw("POST", &url, body, &h)
    };
    // The visitor sends an image.
    let r = up("foto 1.png", "f1", &png(), &v.token, true);
    assert_eq!(r.status, 201, "{:?}", r.body);
    let att = r.body["message"]["attachment"].clone();
    assert_eq!(att["content_type"], "image/png");
    assert_eq!(att["name"], "foto 1.png");
    assert_eq!(att["size"], 208);
    let m = a.chat(&c).wait_for("attachment message", T, |f| {
        ty(f) == "message" && f["message"]["attachment"]["id"] == att["id"]
    });
    assert_eq!(m["message"]["text"], "foto 1.png");
    // A resend of the same upload is stored once.
    let again = up("foto 1.png", "f1", &png(), &v.token, true);
    assert_eq!((again.status, &again.body["seq"]), (201, &r.body["seq"]));
    // Downloads: the agent with the session, the visitor with token and origin.
    let file = format!(
        "{}/api/v1/conversations/{c}/attachments/{}",
        ctx.base,
        att["id"].as_str().expect("id")
    );
    let session = format!("Bearer {}", a.token);
    let (st, h, body) = fetch(&file, &[("Authorization", &session)]);
    assert_eq!(st, 200);
    assert_eq!(body, png(), "the same bytes");
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-disposition"].starts_with("attachment; filename=\"foto 1.png\""),
        "{h:?}"
    );
    let visitor_auth = format!("Bearer {}", v.token);
    let (st, _, body) = fetch(&file, &[("Authorization", &visitor_auth), ("Origin", SHOP)]);
    assert_eq!((st, body.len()), (200, 208));
    // Others get nothing.
    let mut x = agent(ctx, "t-files-x", "fx");
    x.available();
    let other = format!("Bearer {}", x.token);
    assert_eq!(
        fetch(&file, &[("Authorization", &other)]).0,
        403,
        "another tenant's agent"
    );
    assert_eq!(
        fetch(&file, &[("Authorization", "Bearer nope"), ("Origin", SHOP)]).0,
        401
    );
    assert_eq!(
        fetch(
            &file,
            &[
                ("Authorization", &visitor_auth),
                ("Origin", "https://evil.example")
            ]
        )
        .0,
        403
    );
    // Refused by content, size and name, naming the problem; nothing stored.
    for (name, body, status, code) in [
        (
            "logo.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
            415,
            "unsupported_type",
        ),
        (
            "page.png",
            b"<!doctype html><script>alert(1)</script>".to_vec(),
            415,
            "unsupported_type",
        ),
        ("a/b.png", png(), 400, "invalid_file_name"),
        ("empty.png", vec![], 400, "attachment_empty"),
        (
            "big.png",
            {
                let mut b = png();
                b.resize(10 * 1024 * 1024 + 1, 0);
                b
            },
            413,
            "attachment_too_large",
        ),
    ] {
        let r = up(name, "bad", &body, &v.token, true);
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (status, Some(code)),
            "{name}: {:?}",
            r.body
        );
    }
    // The agent sends a PDF; the visitor gets it.
    let r = up(
        "Rechnung März.pdf",
        "p1",
        b"%PDF-1.7\n%test",
        &a.token,
        false,
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let m = v.sock.wait_for("agent's PDF", T, |f| {
        ty(f) == "message" && f["message"]["attachment"]["content_type"] == "application/pdf"
    });
    assert_eq!(m["message"]["text"], "Rechnung März.pdf");
    assert_eq!(
        m["message"]["author"]["kind"], "staff",
        "agents are named, not their login ids"
    );
}

/// Agent pictures: an admin uploads one (checked by its bytes and size), names it in
/// the configuration, and the widget's site info carries where it is served; it is
/// served to anyone, cached for good; bad uploads and bad ids are refused by name.
pub fn avatars(ctx: &Ctx) {
    make_tenant(ctx, "t-faces", 30, 600, &[("fa", 3), ("fb", 3)]);
    let token = admin(ctx)[0].1.clone();
    let url = format!("{}/api/v1/admin/tenants/t-faces/avatars", ctx.base);
    let put = |body: &[u8], auth: &str| {
        http_raw(
            "PUT",
            &url,
            body,
            &[("Authorization", auth), ("Content-Type", "image/png")],
        )
    };
    let r = put(&png(), &token);
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["avatar"].as_str().expect("avatar id").to_owned();
    assert!(shared::attachment::is_picture_id(&id), "{id}");
    let served = r.body["url"].as_str().expect("url").to_owned();
    assert_eq!(served, format!("/api/v1/avatars/t-faces/{id}"));
    // The same picture gets the same id.
    assert_eq!(put(&png(), &token).body["avatar"], id.as_str());
    // Served to anyone, with its type, cached for good.
    let (st, h, body) = fetch(&format!("{}{served}", ctx.base), &[]);
    assert_eq!((st, body), (200, png()));
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["x-content-type-options"], "nosniff");
    // Refused, by name: not an image, too large, no admin, unknown or malformed id.
    let svg = put(b"<svg xmlns='http://www.w3.org/2000/svg'/>", &token);
    assert_eq!(
        (svg.status, &svg.body["error"]),
        (415, &json!("picture_type"))
    );
    let big = put(
        &vec![0x89; shared::attachment::MAX_PICTURE_BYTES + 1],
        &token,
    );
    assert_eq!(
        (big.status, &big.body["error"]),
        (413, &json!("picture_too_large"))
    );
    assert!(big.body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("256 KiB"));
    assert_eq!(put(&png(), "Bearer nope").status, 401);
    for bad in ["0123456789abcdef0123456789abcdef", "..%2F..%2Fsecret"] {
        let (st, _, _) = fetch(&format!("{}/api/v1/avatars/t-faces/{bad}", ctx.base), &[]);
        assert_eq!(st, 404, "{bad}");
    }
    // The configuration names it; a made-up id is refused.
    make_tenant_with(ctx, "t-faces", 30, 600, &[("fa", 3), ("fb", 3)], |c| {
        c["config"]["agents"][0]["avatar"] = json!(id);
    });
    let bad = http(
        "PUT",
        &format!("{}/api/v1/admin/tenants/t-faces/config", ctx.base),
        Some(&json!({ "config": {
            "name": "t-faces",
            "sites": [],
            "queues": [{ "id": "q1", "name": "Q" }],
            "agents": [{ "id": "fa", "name": "A", "queues": ["q1"], "avatar": "me.png" }]
        }})),
        &[("Authorization", &token)],
    );
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    assert!(bad.body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("agent fa: avatar \"me.png\" is not a picture id"));
    // The widget's site info: the first agent's picture, the second's initials.
    let info = http(
        "GET",
        &format!("{}/api/v1/sites/t-faces-site", ctx.base),
        None,
        &[("Origin", SHOP)],
    );
    assert_eq!(info.status, 200, "{:?}", info.body);
    assert_eq!(info.body["team"][0]["picture"], served.as_str());
    assert_eq!(info.body["team"][1]["initials"], "AF");
    assert!(info.body["team"][1]["picture"].is_null());
    // Replaced: the new picture is served, the old one (no agent uses it) is gone.
    let mut other = png();
    other.extend_from_slice(b"another picture");
    let r = put(&other, &token);
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id2 = r.body["avatar"].as_str().expect("avatar id").to_owned();
    assert_ne!(id2, id);
    let served2 = r.body["url"].as_str().expect("url").to_owned();
    make_tenant_with(ctx, "t-faces", 30, 600, &[("fa", 3), ("fb", 3)], |c| {
        c["config"]["agents"][0]["avatar"] = json!(id2);
    });
    let (st, _, _) = fetch(&format!("{}{served}", ctx.base), &[]);
    assert_eq!(st, 404, "the replaced picture left storage");
    let (st, _, _) = fetch(&format!("{}{served2}", ctx.base), &[]);
    assert_eq!(st, 200);
    // Erased on request (an agent leaves): gone at once.
    let del = http(
        "DELETE",
        &format!("{}/api/v1/admin/tenants/t-faces/avatars/{id2}", ctx.base),
        None,
        &[("Authorization", &token)],
    );
    assert_eq!(del.status, 200, "{:?}", del.body);
    let (st, _, _) = fetch(&format!("{}{served2}", ctx.base), &[]);
    assert_eq!(st, 404);
}
