//! The bad-input corpus: every case in `tests/corpus/*.json` is sent to the real
//! service and must be refused with its stated status (HTTP) or error code / close
//! code (socket frames), and the state read back afterwards must equal the state
//! before: refused input changes nothing.
//!
//! Placeholders like `{conv}` or `{session}` in a case are filled from fixtures made
//! here (a tenant with an active chat, a queued chat, live, expired, forged and revoked
//! sessions, used tickets, another tenant's ticket).

use super::*;
use base64::Engine as _;
use std::collections::BTreeMap;

#[derive(serde::Deserialize)]
struct HttpCase {
    name: String,
    method: String,
    path: String,
    status: u16,
    error: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    body_text: Option<String>,
    #[serde(default)]
    body_b64: Option<String>,
    #[serde(default)]
    body_gen: Option<String>,
}

#[derive(serde::Deserialize)]
struct FrameCase {
    socket: String,
    name: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    text_b64: Option<String>,
    #[serde(default)]
    binary_b64: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    close: Option<u16>,
}

struct Fixtures {
    vars: BTreeMap<&'static str, String>,
    configs: BTreeMap<&'static str, Value>,
    agent: Agent,
    visitor: Visitor,
    queued: Visitor,
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("corpus base64")
}

fn fill(vars: &BTreeMap<&'static str, String>, s: &str) -> String {
    let mut out = s.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

fn config(tenant: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut cfg = json!({
        "config": {
            "name": tenant,
            "sites": [{ "key": format!("{tenant}-site"), "name": "Site", "allowed_origins": [SHOP], "queue": "q1" }],
            "queues": [
                { "id": "q1", "name": "Support", "offer_timeout_secs": 60, "inactivity_timeout_secs": 3600 },
                { "id": "q2", "name": "Sales", "offer_timeout_secs": 60, "inactivity_timeout_secs": 3600 }
            ],
            "agents": [
                { "id": "ca", "name": "Agent ca", "capacity": 3, "queues": ["q1", "q2"] },
                { "id": "cb", "name": "Agent cb", "capacity": 3, "queues": ["q1", "q2"] }
            ],
            "idle_reasons": [{ "id": "break", "label": "Break" }],
            "wrap_up_reasons": [{ "id": "solved", "label": "Solved" }],
            "templates": [{ "id": "hi", "name": "Hi", "text": "Hallo <customer_name>." }]
        },
        "site_secrets": { format!("{tenant}-site"): SITE_SECRET }
    });
    edit(&mut cfg);
    cfg
}

fn fixtures(ctx: &Ctx) -> Fixtures {
    let tenant = "t-corpus";
    make_tenant_with(ctx, tenant, 60, 3600, &[("ca", 3), ("cb", 3)], |_| {});
    let mut ca = agent(ctx, tenant, "ca");
    ca.available();
    let mut v = visitor(ctx, "t-corpus-site", "Corpus", "hello");
    let conv = ca.wait_offer();
    assert_eq!(conv, v.conv);
    ca.accept(&conv);
    // The chat ticket that opened the socket: used now.
    let chat_ticket = ca
        .sock
        .seen
        .iter()
        .rev()
        .find(|f| ty(f) == "ticket" && f["conversation"] == conv.as_str())
        .and_then(|f| f["ticket"].as_str())
        .expect("chat ticket")
        .to_owned();
    v.say("base-visitor", "original visitor text");
    ca.say(&conv, "base-chat", "original agent text");
    ca.chat(&conv).wait_for("ack", T, |f| {
        ty(f) == "ack" && f["client_id"] == "base-chat"
    });
    ca.send(json!({ "type": "set_state", "state": { "state": "idle", "reason": "break" } }));
    ca.sock.wait_for("idle", T, |f| {
        ev(f) == "state" && f["event"]["state"]["state"] == "idle"
    });
    let _cb_live = sign_in(ctx, tenant, "cb");
    let cb_revoked = sign_in(ctx, tenant, "cb");
    let r = http(
        "POST",
        &format!("{}/api/v1/agent/sign-out", ctx.base),
        None,
        &[("Authorization", &format!("Bearer {cb_revoked}"))],
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let queued = visitor(ctx, "t-corpus-site", "Waiting", "anyone?");
    // A used control ticket, and an unused one.
    let used = control_ticket(ctx, &ca.token).body["ticket"]
        .as_str()
        .expect("t")
        .to_owned();
    open_ws(&format!("{}/api/v1/agent/ws?ticket={used}", ctx.ws), None)
        .expect("socket with ticket")
        .close();
    let unused = control_ticket(ctx, &ca.token).body["ticket"]
        .as_str()
        .expect("t")
        .to_owned();
    // Another tenant's chat ticket.
    make_tenant(ctx, "t-corpus-other", 60, 3600, &[("oa", 3)]);
    let mut oa = agent(ctx, "t-corpus-other", "oa");
    oa.available();
    let _ov = visitor(ctx, "t-corpus-other-site", "Other", "hi");
    let oc = oa.wait_offer();
    oa.send(json!({ "type": "accept", "conversation": oc }));
    let other_ticket = oa.sock.wait_for("ticket", T, |f| ty(f) == "ticket")["ticket"]
        .as_str()
        .expect("t")
        .to_owned();
    let expired = {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"tenant": tenant, "agent": "ca", "sid": "x", "exp": 1000}).to_string());
        format!("{payload}.{}", tests_hmac(&payload))
    };
    let now = chrono::Utc::now().timestamp();
    let mut vars = BTreeMap::new();
    vars.insert("tenant", tenant.to_owned());
    vars.insert("site", "t-corpus-site".to_owned());
    vars.insert("conv", conv.clone());
    vars.insert("queued_conv", queued.conv.clone());
    vars.insert("token", v.token.clone());
    vars.insert("other_token", queued.token.clone());
    vars.insert("session", ca.token.clone());
    vars.insert("forged_session", format!("{}x", ca.token));
    vars.insert("expired_session", expired);
    vars.insert("revoked_session", cb_revoked);
    vars.insert("chat_ticket", chat_ticket);
    vars.insert("control_ticket", unused);
    vars.insert("used_control_ticket", used);
    vars.insert("other_chat_ticket", other_ticket);
    vars.insert("unknown_conv", "zzzzunknownconversation00".to_owned());
    vars.insert("admin", ADMIN_TOKEN.to_owned());
    vars.insert("self", ctx.base.clone());
    vars.insert("user_hash", tests_user_hash(SITE_SECRET, "u1", now));
    vars.insert(
        "old_user_hash",
        tests_user_hash(SITE_SECRET, "u1", now - 2 * 86_400),
    );
    let pw = |cfg: &mut Value, p: &str| {
        cfg["passwords"] = json!({ "ca": p, "cb": p });
    };
    let mut configs = BTreeMap::new();
    configs.insert("config_weak_password", config(tenant, |c| pw(c, "short")));
    configs.insert(
        "config_short_secret",
        config(tenant, |c| {
            c["site_secrets"]["t-corpus-site"] = json!("too-short")
        }),
    );
    configs.insert(
        "config_no_retention",
        config(tenant, |c| c["config"]["retention_days"] = json!(0)),
    );
    configs.insert(
        "config_bad_accent",
        config(tenant, |c| {
            c["config"]["sites"][0]["accent"] = json!("red; background:url(x)")
        }),
    );
    configs.insert(
        "config_bad_hash",
        config(tenant, |c| {
            c["password_hashes"] = json!({ "ca": "md5:abc" })
        }),
    );
    Fixtures {
        vars,
        configs,
        agent: ca,
        visitor: v,
        queued,
    }
}

/// What the corpus must not change: configuration, closed list, both transcripts,
/// the active chat's state and the agent's session.
fn fingerprint(ctx: &Ctx, f: &Fixtures) -> Value {
    let h = admin(ctx);
    let cfg = http(
        "GET",
        &format!("{}/api/v1/admin/tenants/t-corpus/config", ctx.base),
        None,
        &[("Authorization", &h[0].1)],
    );
    let closed = closed_list(ctx, "t-corpus");
    let t1 = transcript(ctx, &f.visitor.conv, &f.visitor.token);
    let t2 = transcript(ctx, &f.queued.conv, &f.queued.token);
    let session = control_ticket(ctx, &f.agent.token).status;
    json!({ "config": cfg.body, "closed": closed.body, "t1": t1.body, "t2": t2.body, "session": session })
}

fn http_body(case: &HttpCase, f: &Fixtures) -> Vec<u8> {
    if let Some(g) = &case.body_gen {
        return match g.as_str() {
            "ten_megabytes" => {
                format!("{{\"text\":\"{}\"}}", "x".repeat(10 * 1024 * 1024)).into_bytes()
            }
            "hundred_kilobytes" => {
                format!("{{\"text\":\"{}\"}}", "x".repeat(100 * 1024)).into_bytes()
            }
            "nested_arrays" => format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            "nested_objects" => {
                format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes()
            }
            other => panic!("unknown body_gen {other}"),
        };
    }
    if let Some(t) = &case.body_text {
        return t.clone().into_bytes();
    }
    if let Some(b) = &case.body_b64 {
        return b64(b);
    }
    match &case.body {
        Some(Value::String(s)) if s.starts_with("{config_") => {
            let key = s.trim_matches(|c| c == '{' || c == '}');
            f.configs
                .get(key)
                .expect("config fixture")
                .to_string()
                .into_bytes()
        }
        Some(v) => fill(&f.vars, &v.to_string()).into_bytes(),
        None => vec![],
    }
}

fn run_http(ctx: &Ctx, f: &Fixtures, cases: &[HttpCase], bad: &mut Vec<String>) {
    for case in cases {
        let before = fingerprint(ctx, f);
        // Tickets live 30 s: fresh ones for the cases that name them.
        let mut vars = f.vars.clone();
        for (key, conv, token) in [
            ("visitor_ticket", &f.visitor.conv, &f.visitor.token),
            ("other_visitor_ticket", &f.queued.conv, &f.queued.token),
        ] {
            if case.path.contains(&format!("{{{key}}}")) {
                let t = visitor_ticket(ctx, conv, token);
                vars.insert(key, t.body["ticket"].as_str().expect("ticket").to_owned());
            }
        }
        if case.method == "WS" {
            let url = format!("{}{}", ctx.ws, fill(&vars, &case.path));
            let origin = case.headers.get("Origin").map(|o| fill(&vars, o));
            let got = match open_ws(&url, origin.as_deref()) {
                Ok(s) => {
                    s.close();
                    (101, String::new(), String::new())
                }
                Err((status, mut body)) => {
                    if body.is_empty() {
                        // The WebSocket client may return before the refusal's body
                        // arrives: ask the same again over plain HTTP to read why.
                        let mut h = vec![
                            ("Upgrade", "websocket"),
                            ("Connection", "Upgrade"),
                            ("Sec-WebSocket-Version", "13"),
                            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                        ];
                        if let Some(o) = origin.as_deref() {
                            h.push(("Origin", o));
                        }
                        let http_url = format!("{}{}", ctx.base, fill(&vars, &case.path));
                        let again = tests::http_raw("GET", &http_url, &[], &h);
                        if again.status == status {
                            body = again.body.to_string();
                        }
                    }
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    (status, v["error"].as_str().unwrap_or("").to_owned(), body)
                }
            };
            if got.0 != case.status || got.1 != case.error {
                bad.push(format!(
                    "{}: want {} {}, got {} {} ({})",
                    case.name, case.status, case.error, got.0, got.1, got.2
                ));
            } else if fingerprint(ctx, f) != before {
                bad.push(format!("{}: state changed", case.name));
            }
            continue;
        }
        let url = format!("{}{}", ctx.base, fill(&f.vars, &case.path));
        let headers: Vec<(String, String)> = case
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), fill(&f.vars, v)))
            .collect();
        let mut h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = http_body(case, f);
        if !body.is_empty() {
            h.push(("Content-Type", "application/json"));
        }
        let a = tests::http_raw(&case.method, &url, &body, &h);
        let code = a.body["error"].as_str().unwrap_or("");
        if a.status != case.status || code != case.error {
            bad.push(format!(
                "{}: want {} {}, got {} {} ({})",
                case.name, case.status, case.error, a.status, code, a.body["message"]
            ));
            continue;
        }
        if case.status < 500 && a.body["message"].as_str().is_none_or(str::is_empty) {
            bad.push(format!("{}: the error names no problem", case.name));
        }
        let after = fingerprint(ctx, f);
        if before != after {
            bad.push(format!("{}: state changed", case.name));
        }
    }
}

fn reopen(ctx: &Ctx, f: &mut Fixtures, which: &str) {
    let conv = f.visitor.conv.clone();
    match which {
        "visitor" => f.visitor.sock = visitor_ws(ctx, &conv, &f.visitor.token, 0),
        "control" => f.agent.sock = agent_ws(ctx, &f.agent.token),
        _ => {
            f.agent
                .send(json!({ "type": "ticket", "conversation": conv }));
            f.agent.open_chat(&conv, 0);
        }
    }
}

fn run_frames(ctx: &Ctx, f: &mut Fixtures, cases: &[FrameCase], bad: &mut Vec<String>) {
    for case in cases {
        let before = fingerprint(ctx, f);
        let conv = f.visitor.conv.clone();
        let sock = match case.socket.as_str() {
            "visitor" => &mut f.visitor.sock,
            "control" => &mut f.agent.sock,
            _ => f.agent.chats.get_mut(&conv).expect("chat socket"),
        };
        sock.clear();
        if let Some(t) = &case.text {
            sock.send_raw(&fill(&f.vars, t));
        } else if let Some(b) = &case.text_b64 {
            sock.send_text_bytes(&b64(b));
        } else if let Some(b) = &case.binary_b64 {
            sock.send_binary(&b64(b));
        }
        let outcome = if let Some(want) = case.close {
            let (got, _) = sock.wait_closed(&case.name, T);
            (got != want).then(|| format!("{}: want close {want}, got {got}", case.name))
        } else {
            let want = case.error.clone().unwrap_or_default();
            let got = sock.wait_for(&case.name, T, |v| ty(v) == "error" || ty(v) == "ack");
            let code = got["code"].as_str().unwrap_or("ack");
            (code != want).then(|| {
                format!(
                    "{}: want {want}, got {code} ({})",
                    case.name, got["message"]
                )
            })
        };
        let closed = sock.closed.is_some();
        if let Some(o) = outcome {
            bad.push(o);
        }
        if closed {
            reopen(ctx, f, &case.socket);
        }
        if fingerprint(ctx, f) != before {
            bad.push(format!("{}: state changed", case.name));
        }
    }
}

/// Runs both corpus files; every case must pass.
pub fn corpus(ctx: &Ctx) {
    let dir = tests::root().join("tests/corpus");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("corpus file");
    let http_cases: Vec<HttpCase> = serde_json::from_str(&read("http.json")).expect("http.json");
    let frame_cases: Vec<FrameCase> =
        serde_json::from_str(&read("frames.json")).expect("frames.json");
    let total = http_cases.len() + frame_cases.len();
    assert!(total >= 200, "the corpus has {total} cases");
    let mut f = fixtures(ctx);
    let mut bad = vec![];
    run_http(ctx, &f, &http_cases, &mut bad);
    run_frames(ctx, &mut f, &frame_cases, &mut bad);
    for b in &bad {
        println!("  corpus: {b}");
    }
    println!("  corpus: {} of {total} cases as stated", total - bad.len());
    assert!(bad.is_empty(), "{} corpus cases failed", bad.len());
}
