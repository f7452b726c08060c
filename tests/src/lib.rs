//! Test harness: starts a real `wrangler dev` (workerd, local Durable Object
//! storage) on a free loopback port with a fresh state folder, and clients that
//! speak the real HTTP and WebSocket API.
//!
//! Rules: every wait has a deadline and waits on an event (a frame, an HTTP
//! answer), never on a sleep; the server is stopped (its whole process group)
//! when the [`Server`] is dropped, also when a test panics.

use serde_json::{json, Value};
use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message as WsMessage, WebSocket};

/// The admin token of local runs (`edge/.dev.vars`).
pub const ADMIN_TOKEN: &str = "dev-admin-token";
/// The session secret of local runs (`edge/.dev.vars`).
pub const SESSION_SECRET: &str = "dev-only-session-secret-change-me";

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A running `wrangler dev`.
pub struct Server {
    pub port: u16,
    pub state_dir: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    vars: Vec<(String, String)>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Server {
    /// Starts wrangler with extra `--var`s and waits until it answers (deadline 240 s).
    pub fn start(vars: &[(&str, &str)]) -> Server {
        Self::start_in(&std::env::temp_dir(), vars)
    }

    /// [`Server::start`] with its state and log under `root` (e.g. a tmpfs).
    pub fn start_in(root: &Path, vars: &[(&str, &str)]) -> Server {
        let dir = root.join(format!(
            "switchboard-e2e-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("state dir");
        let mut s = Server {
            port: free_port(),
            state_dir: dir.join("state"),
            log: dir.join("wrangler.log"),
            child: None,
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        use std::os::unix::process::CommandExt;
        let root = root();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let mut args: Vec<String> = vec![
            "dev".into(),
            "--ip".into(),
            "127.0.0.1".into(),
            "--port".into(),
            self.port.to_string(),
            "--persist-to".into(),
            self.state_dir.display().to_string(),
            "--show-interactive-dev-session=false".into(),
            "--inspector-port".into(),
            free_port().to_string(),
        ];
        for (k, v) in &self.vars {
            args.push("--var".into());
            args.push(format!("{k}:{v}"));
        }
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        let child = Command::new(root.join("node_modules/.bin/wrangler"))
            .args(&args)
            .current_dir(root.join("edge"))
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            .env("WRANGLER_HIDE_BANNER", "true")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env(
                "WASM_BINDGEN_BIN",
                format!("{home}/.cargo/bin/wasm-bindgen"),
            )
            .env("WASM_OPT_BIN", root.join("node_modules/.bin/wasm-opt"))
            .env(
                "ESBUILD_BIN",
                root.join("node_modules/@esbuild/linux-x64/bin/esbuild"),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start wrangler");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            if let Ok(r) = ureq::get(&format!("{}/api/v1/health", self.base()))
                .timeout(Duration::from_secs(2))
                .call()
            {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("wrangler exited early ({st}); see {}", self.log.display());
                }
            }
            assert!(
                Instant::now() < deadline,
                "wrangler did not answer within 240 s; see {}",
                self.log.display()
            );
            // Poll again: the next connect attempt is the event we wait for.
            let _ = TcpStream::connect_timeout(
                &format!("127.0.0.1:{}", self.port).parse().expect("addr"),
                Duration::from_millis(250),
            );
        }
    }

    /// Kills the whole process group (wrangler and workerd).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pgid = c.id() as i32;
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{pgid}")])
                .status();
            let _ = c.wait();
        }
        // Wait until the port is free again.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::yield_now();
        }
    }

    /// Kill and start again on the same port and state.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Kill and start again on the same port and state with other `--var`s.
    pub fn restart_with(&mut self, vars: &[(&str, &str)]) {
        self.kill();
        self.vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.spawn();
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn ws_base(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
}

/// One HTTP call; `headers` are extra headers.
pub fn http(method: &str, url: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Answer {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(30));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let r = match body {
        Some(b) => req.send_json(b.clone()),
        None => req.call(),
    };
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    answer(resp)
}

fn answer(resp: ureq::Response) -> Answer {
    let status = resp.status();
    let retry_after = resp.header("Retry-After").map(str::to_owned);
    let text = resp.into_string().unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        retry_after,
    }
}

/// One HTTP call with a raw body (any bytes, any size).
pub fn http_raw(method: &str, url: &str, body: &[u8], headers: &[(&str, &str)]) -> Answer {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(60));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => {
            return Answer {
                status: 0,
                body: Value::String(e.to_string()),
                retry_after: None,
            }
        }
    };
    answer(resp)
}

/// A WebSocket client with deadline-bound waits.
pub struct Socket {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    /// Every frame received so far.
    pub seen: Vec<Value>,
    /// Indexes of `seen` already returned by [`Socket::wait_for`].
    used: Vec<bool>,
    /// The server closed the socket (code and reason).
    pub closed: Option<(u16, String)>,
}

/// Opens a WebSocket; `Err(status)` when the upgrade is refused.
pub fn open_ws(url: &str, origin: Option<&str>) -> Result<Socket, (u16, String)> {
    use tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().map_err(|e| (0, e.to_string()))?;
    if let Some(o) = origin {
        req.headers_mut()
            .insert("Origin", o.parse().map_err(|_| (0, "origin".to_string()))?);
    }
    match tungstenite::connect(req) {
        Ok((ws, _)) => Ok(Socket {
            ws,
            seen: vec![],
            used: vec![],
            closed: None,
        }),
        Err(tungstenite::Error::Http(r)) => {
            let body = r
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((r.status().as_u16(), body))
        }
        Err(e) => Err((0, e.to_string())),
    }
}

impl Socket {
    /// Sends a protocol frame (adds `"v": 1` unless present).
    pub fn send(&mut self, mut frame: Value) {
        if let Value::Object(m) = &mut frame {
            m.entry("v").or_insert(json!(1));
        }
        self.ws
            .send(WsMessage::text(frame.to_string()))
            .expect("ws send");
    }
    /// Sends raw text.
    pub fn send_raw(&mut self, text: &str) {
        self.ws
            .send(WsMessage::text(text.to_owned()))
            .expect("ws send");
    }

    /// Sends a text frame with arbitrary payload bytes (e.g. invalid UTF-8).
    pub fn send_text_bytes(&mut self, bytes: &[u8]) {
        use tungstenite::protocol::frame::coding::{Data, OpCode};
        use tungstenite::protocol::frame::Frame;
        let f = Frame::message(bytes.to_vec(), OpCode::Data(Data::Text), true);
        let _ = self.ws.send(WsMessage::Frame(f));
    }
    /// Sends a binary frame.
    pub fn send_binary(&mut self, bytes: &[u8]) {
        let _ = self.ws.send(WsMessage::binary(bytes.to_vec()));
    }

    /// Waits for the next frame (≤ deadline).
    pub fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            if let MaybeTlsStream::Plain(s) = self.ws.get_mut() {
                let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(5))));
            }
            match self.ws.read() {
                Ok(WsMessage::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("frame is JSON");
                    self.seen.push(v.clone());
                    self.used.push(false);
                    return Some(v);
                }
                Ok(WsMessage::Close(f)) => {
                    self.closed = Some(
                        f.map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new())),
                    );
                    return None;
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return None
                }
                Err(_) => {
                    self.closed.get_or_insert((1006, String::new()));
                    return None;
                }
            }
        }
    }

    /// Waits until a frame matches `pred` (deadline `timeout`), returning it. Frames
    /// received earlier and not yet returned are considered first, in order.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(i) = (0..self.seen.len()).find(|i| !self.used[*i] && pred(&self.seen[*i])) {
            self.used[i] = true;
            return self.seen[i].clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_default();
            match self.next(left) {
                Some(v) if pred(&v) => {
                    if let Some(u) = self.used.last_mut() {
                        *u = true;
                    }
                    return v;
                }
                Some(_) => continue,
                None => panic!(
                    "timed out after {timeout:?} waiting for {what}; last frames: {:?}",
                    self.seen.iter().rev().take(6).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Asserts no frame matching `pred` arrives within `window` (used only where
    /// the absence of an event is the point, after a positive event proved delivery works).
    pub fn none_within(&mut self, window: Duration, pred: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + window;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(v) = self.next(left) {
                assert!(!pred(&v), "unexpected frame {v}");
            }
        }
    }

    /// Waits until the server closes the socket (deadline `timeout`); gives code and reason.
    pub fn wait_closed(&mut self, what: &str, timeout: Duration) -> (u16, String) {
        let deadline = Instant::now() + timeout;
        while self.closed.is_none() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            let _ = self.next(left);
        }
        self.closed
            .clone()
            .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what} to close"))
    }

    /// Forgets every frame received so far.
    pub fn clear(&mut self) {
        self.seen.clear();
        self.used.clear();
    }

    pub fn close(mut self) {
        let _ = self.ws.close(None);
    }
}

/// Frame type.
pub fn ty(v: &Value) -> &str {
    v["type"].as_str().unwrap_or("")
}
/// For agent `event` frames: the event name.
pub fn ev(v: &Value) -> &str {
    if ty(v) == "event" {
        v["event"]["event"].as_str().unwrap_or("")
    } else {
        ""
    }
}
