//! A minimal relay Durable Object, only for benchmarks: the floor the real
//! conversation path is compared against (`tests/src/bin/bench.rs`).
//!
//! Rules:
//! - Reachable only when the var `BENCH_RELAY` is "true" (the Worker entry checks it
//!   before calling [`route`]); `GET /bench/relay/{conv}/ws?role=visitor|agent`.
//! - One object per `{conv}` (binding `RELAY`, addressed by name). Each socket is a
//!   hibernating WebSocket tagged with its role, `visitor` or `agent`.
//! - A text frame from one role is forwarded unchanged to every socket of the other
//!   role; nothing is parsed, checked, stored or acknowledged. Binary frames are
//!   dropped. A closing socket is closed; nothing else happens.
//! - A request without `Upgrade: websocket` gets 426, an unknown role or a malformed
//!   `{conv}` gets 400.

use worker::{
    durable_object, DurableObject, Env, Headers, Method, Request, RequestInit, Response, State,
    WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

/// The Durable Object binding of [`RelayObject`].
pub const BINDING: &str = "RELAY";

/// The two roles a relay socket can have.
const ROLES: [&str; 2] = ["visitor", "agent"];

/// The role a socket's frames go to.
fn other(role: &str) -> Option<&'static str> {
    match role {
        "visitor" => Some("agent"),
        "agent" => Some("visitor"),
        _ => None,
    }
}

/// The `role` query parameter, if it is one of [`ROLES`].
fn role_of(req: &Request) -> Option<&'static str> {
    let url = req.url().ok()?;
    let role = url
        .query_pairs()
        .find(|(k, _)| k == "role")
        .map(|(_, v)| v.into_owned())?;
    ROLES.into_iter().find(|r| *r == role)
}

fn is_upgrade(req: &Request) -> bool {
    matches!(req.headers().get("Upgrade"), Ok(Some(v)) if v.eq_ignore_ascii_case("websocket"))
}

/// A conversation name: 1 to 64 characters from `A-Z a-z 0-9 _ -`.
fn valid_conv(conv: &str) -> bool {
    !conv.is_empty()
        && conv.len() <= 64
        && conv
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Forwards `GET /bench/relay/{conv}/ws?role=...` to the relay object named `conv`.
pub async fn route(req: Request, env: &Env, conv: &str) -> worker::Result<Response> {
    if !is_upgrade(&req) {
        return Response::error("this endpoint speaks WebSocket only", 426);
    }
    if !valid_conv(conv) {
        return Response::error(
            "the conversation name must be 1 to 64 of A-Z a-z 0-9 _ -",
            400,
        );
    }
    let Some(role) = role_of(&req) else {
        return Response::error("role must be visitor or agent", 400);
    };
    let stub = env
        .durable_object(BINDING)?
        .id_from_name(conv)?
        .get_stub()?;
    let headers = Headers::new();
    headers.set("Upgrade", "websocket")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let url = format!("https://internal/ws?role={role}");
    stub.fetch_with_request(Request::new_with_init(&url, &init)?)
        .await
}

/// One relay per benchmark conversation (see the module docs).
#[durable_object]
pub struct RelayObject {
    state: State,
}

impl DurableObject for RelayObject {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        if req.path() != "/ws" {
            return Response::error("not found", 404);
        }
        if !is_upgrade(&req) {
            return Response::error("this endpoint speaks WebSocket only", 426);
        }
        let Some(role) = role_of(&req) else {
            return Response::error("role must be visitor or agent", 400);
        };
        let pair = WebSocketPair::new()?;
        self.state.accept_websocket_with_tags(&pair.server, &[role]);
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        let WebSocketIncomingMessage::String(text) = message else {
            return Ok(());
        };
        let to = self.state.get_tags(&ws).iter().find_map(|t| other(t));
        if let Some(to) = to {
            for peer in self.state.get_websockets_with_tag(to) {
                // A peer that is closing just misses the frame.
                let _ = peer.send_with_str(&text);
            }
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        let _ = ws.close(Some(1000), Some("bye"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        Ok(())
    }
}
