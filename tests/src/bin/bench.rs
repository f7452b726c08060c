//! `cargo run --release -p tests --bin bench [-- --smoke] [--rounds N]`: a load
//! generator that starts its own `wrangler dev` (with `BENCH_RELAY=true` and the rate
//! limits lifted) and runs the same traffic through two systems on that one server:
//!
//! - **relay**: `GET /bench/relay/{conv}/ws?role=visitor|agent`, a Durable Object that
//!   forwards each text frame to the other role's sockets (`edge/src/relay_do.rs`);
//! - **ours**: the real API (admin config, agent sign-in, agent control socket with
//!   offers, accept and tickets, the visitor socket and the agent's per-conversation
//!   socket).
//!
//! Measurements (one markdown table per measurement on stdout, progress on stderr):
//! 1. N conversations × 10 msg/s in one tenant, half visitor→agent, half agent→visitor:
//!    p50/p99 per direction and combined, delivered/offered, workerd CPU per 1,000 msgs;
//! 2. the same spread over 10 tenants;
//! 3. capacity: 5,000 msg/s offered over the conversations of 1, delivered msg/s, p50;
//! 4. chat start → offer shown to an agent at 200 starts/s (relay: socket connect of
//!    a new conversation → its first frame at the waiting agent socket);
//! 5. one conversation at 10 msg/s with 0, 1,000 and 2,000 other open conversations
//!    (visitor socket open; queued in ours);
//! 6. workerd resident memory (VmRSS summed over the workerd processes of this server)
//!    before and after opening 1,000 idle conversations (from the runs of 5).
//!
//! Rules:
//! - Open loop: every conversation has its own interval; a message's latency runs from
//!   its *scheduled* send time (written into the text) to its receipt at the other
//!   side, so a slow server cannot slow the offered load down.
//! - Every message text is unique (`b{run} {v|a} {conv} {n} {sent_us} …`); only the
//!   socket of the other side counts it, and only for the run that sent it.
//! - Every wait waits for an event (a frame, an answer) with a deadline; pacing uses
//!   intervals; nothing sleeps for correctness. Each phase stops by itself.
//! - A phase that fails for one system is reported as failed; the others still run;
//!   the exit code is 1 when anything failed.
//! - `--smoke`: 1 s phases, 5 conversations, small counts for 3 to 6 (CI).
//! - `--phases 1,3`: run only these phases.
//! - `--start-rate N`: chat starts per second of phase 4 (default 200), to find the
//!   rate this machine sustains.
//! - `--disk`: keep the server's state in the temp dir (on disk); by default it lives
//!   on `/dev/shm` when there is one, so that disk flushes of this VM do not hide the
//!   service's own cost (every message is still written before its ack).
//! - `--rounds N`: repeats everything N times, alternating which system goes first;
//!   figures pool the samples of all rounds.
//! - `--port PORT`: use a server already listening on `127.0.0.1:PORT` (it needs
//!   `BENCH_RELAY=true` and the rate limits above lifted); CPU and memory then count
//!   every workerd process of the machine.

use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::{self, Message};

type R<T> = Result<T, String>;

/// Password of every benchmark agent.
const PASSWORD: &str = "bench-password-1";
/// Most chats per agent (`shared/src/config.rs`: capacity 1..=20).
const MAX_CAPACITY: usize = 20;
/// Deadline of each setup step (an answer, a frame).
const T_SETUP: Duration = Duration::from_secs(30);
/// After the last send of a run: how long to wait for the rest to arrive.
const DRAIN: Duration = Duration::from_secs(10);
/// Makes the texts look like chat lines (both systems carry the same text).
const FILLER: &str = "lorem ipsum dolor sit amet, consectetur adipiscing elit";
/// Concurrent sign-ins (each checks a password with PBKDF2 in the Worker).
const SIGN_IN_CONCURRENCY: usize = 4;
/// Concurrent conversation setups.
const SETUP_CONCURRENCY: usize = 8;
/// Concurrent idle-conversation openings (phases 5 and 6).
const OPEN_CONCURRENCY: usize = 16;
/// Clock ticks per second of /proc/PID/stat.
const CLK_TCK: f64 = 100.0;

const SYS: [&str; 2] = ["relay", "ours"];
const RELAY: usize = 0;
const OURS: usize = 1;

// ---------------------------------------------------------------- configuration

const USAGE: &str =
    "usage: bench [--smoke] [--rounds N] [--port PORT] [--phases 1,3,4] [--start-rate N] [--disk]";

#[derive(Debug, Clone)]
struct Cfg {
    smoke: bool,
    rounds: usize,
    /// Use the server already listening on this loopback port instead of starting one.
    port: Option<u16>,
    /// Length of the send window of phases 1, 2 and 5.
    phase: Duration,
    /// Conversations of phases 1 to 3.
    convs: usize,
    /// Messages per second per conversation (phases 1, 2, 5).
    rate: f64,
    /// Tenants of phase 2.
    tenants: usize,
    /// Offered msg/s in total (phase 3).
    cap_rate: f64,
    cap_phase: Duration,
    /// Chat starts per second (phase 4).
    start_rate: f64,
    start_phase: Duration,
    /// Other open conversations per step of phase 5, ascending, starting with 0.
    others: Vec<usize>,
    /// Idle conversations of phase 6 (one of `others`).
    idle: usize,
    /// Phases to run (`--phases 1,3`); all when empty.
    only: Vec<u8>,
    /// Keep the server's state on disk (under the temp dir) instead of tmpfs.
    disk: bool,
}

impl Cfg {
    fn runs(&self, phase: u8) -> bool {
        self.only.is_empty() || self.only.contains(&phase)
    }
}

impl Cfg {
    fn from_args() -> Result<Cfg, String> {
        let mut smoke = false;
        let mut rounds = 1;
        let mut port = None;
        let mut only: Vec<u8> = vec![];
        let mut disk = false;
        let mut start_rate = None;
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--smoke" => smoke = true,
                "--disk" => disk = true,
                "--rounds" => {
                    rounds = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .filter(|n| *n >= 1)
                        .ok_or("--rounds needs a number ≥ 1")?;
                }
                "--port" => {
                    port = Some(
                        args.next()
                            .and_then(|n| n.parse().ok())
                            .ok_or("--port needs a port number")?,
                    );
                }
                "--phases" => {
                    only = args
                        .next()
                        .map(|l| l.split(',').filter_map(|x| x.trim().parse().ok()).collect())
                        .ok_or("--phases needs a list like 1,3")?;
                }
                "--start-rate" => {
                    start_rate = Some(
                        args.next()
                            .and_then(|n| n.parse::<f64>().ok())
                            .filter(|n| *n > 0.0 && *n <= 10_000.0)
                            .ok_or(
                                "--start-rate needs a number of starts per second (1 to 10000)",
                            )?,
                    );
                }
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument {other:?}; {USAGE}")),
            }
        }
        let s = Duration::from_secs;
        Ok(if smoke {
            Cfg {
                smoke,
                rounds,
                port,
                phase: s(1),
                convs: 5,
                rate: 10.0,
                tenants: 5,
                cap_rate: 500.0,
                cap_phase: s(1),
                start_rate: start_rate.unwrap_or(20.0),
                start_phase: s(1),
                others: vec![0, 10],
                idle: 10,
                only: only.clone(),
                disk,
            }
        } else {
            Cfg {
                smoke,
                rounds,
                port,
                phase: s(10),
                convs: 100,
                rate: 10.0,
                tenants: 10,
                cap_rate: 5000.0,
                cap_phase: s(5),
                start_rate: start_rate.unwrap_or(200.0),
                start_phase: s(5),
                others: vec![0, 1000, 2000],
                idle: 1000,
                only,
                disk,
            }
        })
    }
}

// ---------------------------------------------------------------- small helpers

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The bench's time origin; send times in texts are microseconds since it.
fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

fn us_since_epoch(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_micros()).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ty(v: &Value) -> &str {
    v["type"].as_str().unwrap_or("")
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Waits until `done()` holds or `deadline` passes; `n` is notified (with
/// `notify_waiters`) whenever `done()` may have changed. Returns `done()`.
async fn wait_until(n: &Notify, deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        let notified = n.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if done() {
            return true;
        }
        let dl = tokio::time::Instant::from_std(deadline);
        if tokio::time::timeout_at(dl, notified).await.is_err() {
            return done();
        }
    }
}

/// The value at quantile `q` of sorted `v`, in milliseconds.
fn pct_ms(sorted: &[u64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[i] as f64 / 1000.0)
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

// ---------------------------------------------------------------- workerd processes

struct Proc {
    pid: u32,
    ppid: u32,
    pgrp: u32,
    ticks: u64,
    cmd: String,
}

fn procs() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the `(comm)`: state ppid pgrp session tty tpgid flags minflt
        // cminflt majflt cmajflt utime stime …
        let rest = stat.get(stat.rfind(')')? + 1..)?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        Some(Proc {
            pid,
            ppid: u32::try_from(num(1)?).ok()?,
            pgrp: u32::try_from(num(2)?).ok()?,
            ticks: num(11)? + num(12)?,
            cmd,
        })
    })
    .collect()
}

/// The workerd processes of this bench's server: found through the process group of
/// the wrangler whose command line names our state folder, plus their descendants.
fn workerd(state_dir: &str) -> Vec<Proc> {
    let ps = procs();
    let groups: HashSet<u32> = ps
        .iter()
        .filter(|p| p.cmd.contains(state_dir))
        .map(|p| p.pgrp)
        .collect();
    let mut tree: HashSet<u32> = ps
        .iter()
        .filter(|p| groups.contains(&p.pgrp))
        .map(|p| p.pid)
        .collect();
    loop {
        let more: Vec<u32> = ps
            .iter()
            .filter(|p| !tree.contains(&p.pid) && tree.contains(&p.ppid))
            .map(|p| p.pid)
            .collect();
        if more.is_empty() {
            break;
        }
        tree.extend(more);
    }
    ps.into_iter()
        .filter(|p| {
            let exe = p.cmd.split(' ').next().unwrap_or("");
            tree.contains(&p.pid)
                && exe
                    .rsplit('/')
                    .next()
                    .is_some_and(|b| b.contains("workerd"))
        })
        .collect()
}

/// utime + stime of the workerd processes, in clock ticks.
fn cpu_ticks(state_dir: &str) -> Option<u64> {
    let w = workerd(state_dir);
    (!w.is_empty()).then(|| w.iter().map(|p| p.ticks).sum())
}

/// VmRSS summed over the workerd processes, in KiB.
fn rss_kib(state_dir: &str) -> Option<u64> {
    let w = workerd(state_dir);
    if w.is_empty() {
        return None;
    }
    Some(
        w.iter()
            .filter_map(|p| {
                let s = std::fs::read_to_string(format!("/proc/{}/status", p.pid)).ok()?;
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .sum(),
    )
}

// ---------------------------------------------------------------- latency recorder

/// Direction of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    VisitorToAgent = 0,
    AgentToVisitor = 1,
}

#[derive(Default)]
struct RunRec {
    lat: [Vec<u64>; 2],
    last: Option<Instant>,
}

/// Latencies by run; a run is registered by [`Recorder::open`] and taken by [`Recorder::close`].
#[derive(Default)]
struct Recorder {
    runs: Mutex<HashMap<u32, RunRec>>,
    notify: Notify,
    next: AtomicU32,
}

impl Recorder {
    fn open(&self) -> u32 {
        let run = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.runs).insert(run, RunRec::default());
        run
    }
    fn record(&self, run: u32, dir: Dir, at: Instant, sent_us: u64) {
        if let Some(r) = lock(&self.runs).get_mut(&run) {
            r.lat[dir as usize].push(us_since_epoch(at).saturating_sub(sent_us));
            r.last = Some(r.last.map_or(at, |l| l.max(at)));
        }
        self.notify.notify_waiters();
    }
    fn count(&self, run: u32) -> u64 {
        lock(&self.runs)
            .get(&run)
            .map_or(0, |r| (r.lat[0].len() + r.lat[1].len()) as u64)
    }
    async fn wait(&self, run: u32, want: u64, deadline: Instant) -> bool {
        wait_until(&self.notify, deadline, || self.count(run) >= want).await
    }
    fn close(&self, run: u32) -> RunRec {
        lock(&self.runs).remove(&run).unwrap_or_default()
    }
}

/// A probe in a message text.
struct Probe {
    run: u32,
    dir: Dir,
    sent_us: u64,
}

fn probe_text(run: u32, dir: Dir, conv: usize, n: u64, sent_us: u64) -> String {
    let d = match dir {
        Dir::VisitorToAgent => "v",
        Dir::AgentToVisitor => "a",
    };
    format!("b{run} {d} {conv} {n} {sent_us} {FILLER}")
}

/// The send frame both systems carry (the relay forwards it unchanged).
fn send_frame(run: u32, dir: Dir, conv: usize, n: u64, sent_us: u64) -> Message {
    let d = match dir {
        Dir::VisitorToAgent => "v",
        Dir::AgentToVisitor => "a",
    };
    Message::text(
        json!({
            "v": 1,
            "type": "send",
            "client_id": format!("c{run}-{d}-{conv}-{n}"),
            "text": probe_text(run, dir, conv, n, sent_us),
        })
        .to_string(),
    )
}

/// The probe of a received frame: ours delivers `{"type":"message","message":{"text":…}}`,
/// the relay the sender's `{"type":"send","text":…}`.
fn probe_of(v: &Value) -> Option<Probe> {
    let text = match ty(v) {
        "message" => v["message"]["text"].as_str()?,
        "send" => v["text"].as_str()?,
        _ => return None,
    };
    let mut it = text.split(' ');
    let run = it.next()?.strip_prefix('b')?.parse().ok()?;
    let dir = match it.next()? {
        "v" => Dir::VisitorToAgent,
        "a" => Dir::AgentToVisitor,
        _ => return None,
    };
    let _conv = it.next()?;
    let _n = it.next()?;
    let sent_us = it.next()?.parse().ok()?;
    Some(Probe { run, dir, sent_us })
}

// ---------------------------------------------------------------- context, HTTP, sockets

struct Ctx {
    cfg: Cfg,
    port: u16,
    state_dir: String,
    rec: Recorder,
    errors: AtomicU64,
    seq: AtomicU32,
}

impl Ctx {
    fn ws(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }
    fn next_id(&self) -> u32 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }
    fn error_frame(&self, label: &str, v: &Value) {
        let n = self.errors.fetch_add(1, Ordering::Relaxed);
        if n < 20 {
            eprintln!("bench: error frame on {label}: {v}");
        } else if n == 20 {
            eprintln!("bench: more error frames; not printing them");
        }
    }
    fn cpu(&self) -> Option<u64> {
        cpu_ticks(&self.state_dir)
    }
    fn rss(&self) -> Option<u64> {
        rss_kib(&self.state_dir)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    while let Some(eol) = find(b, b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(b.len());
        out.extend_from_slice(&b[start..end]);
        b = b.get(end + 2..).unwrap_or(&[]);
    }
    out
}

/// One HTTP/1.1 call on a fresh loopback connection (TCP_NODELAY, `Connection: close`).
async fn http(
    ctx: &Ctx,
    method: &str,
    path: &str,
    body: Option<&Value>,
    bearer: Option<&str>,
) -> R<(u16, Value)> {
    let port = ctx.port;
    let what = format!("{method} {path}");
    let call = async {
        let io = |e: std::io::Error| format!("{what}: {e}");
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(io)?;
        let _ = s.set_nodelay(true);
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        if let Some(t) = bearer {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        // The widget API serves allowed page origins only.
        req.push_str(&format!("Origin: {BENCH_ORIGIN}\r\n"));
        req.push_str("\r\n");
        req.push_str(&body);
        s.write_all(req.as_bytes()).await.map_err(io)?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p + 4;
            }
            let n = s.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                return Err(format!("{what}: connection closed before the answer"));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{what}: bad status line"))?;
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        let mut rest = buf[head_end..].to_vec();
        let len = header("content-length").and_then(|v| v.parse::<usize>().ok());
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        loop {
            if len.is_some_and(|l| rest.len() >= l) {
                break;
            }
            let n = s.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        if let Some(l) = len {
            rest.truncate(l);
        } else if chunked {
            rest = dechunk(&rest);
        }
        let body = serde_json::from_slice(&rest)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&rest).into_owned()));
        Ok((status, body))
    };
    tokio::time::timeout(T_SETUP, call)
        .await
        .map_err(|_| format!("{method} {path}: no answer within {T_SETUP:?}"))?
}

/// A client WebSocket: frames to send go to `out`; received frames that are not
/// probes, acks, typing or pongs come out of `inbox` with their arrival time.
struct Ws {
    out: mpsc::UnboundedSender<Message>,
    inbox: mpsc::UnboundedReceiver<(Instant, Value)>,
}

impl Ws {
    fn send(&self, v: &Value) {
        let _ = self.out.send(Message::text(v.to_string()));
    }

    async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> R<(Instant, Value)> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped: Vec<Value> = vec![];
        loop {
            match tokio::time::timeout_at(deadline, self.inbox.recv()).await {
                Err(_) => {
                    return Err(format!(
                        "timed out after {timeout:?} waiting for {what}; last frames: {skipped:?}"
                    ))
                }
                Ok(None) => {
                    return Err(format!(
                        "socket closed while waiting for {what}; last frames: {skipped:?}"
                    ))
                }
                Ok(Some((t, v))) => {
                    if pred(&v) {
                        return Ok((t, v));
                    }
                    if skipped.len() >= 4 {
                        skipped.remove(0);
                    }
                    skipped.push(v);
                }
            }
        }
    }
}

/// Opens a socket. Probes of direction `counts` are recorded; other probes are dropped.
/// The page origin the bench's sites allow (and its clients send).
const BENCH_ORIGIN: &str = "https://bench.example";

async fn open_ws(ctx: &Arc<Ctx>, url: &str, counts: Option<Dir>, label: String) -> R<Ws> {
    use tungstenite::client::IntoClientRequest;
    let mut req = url
        .into_client_request()
        .map_err(|e| format!("{label}: {e}"))?;
    req.headers_mut().insert(
        "Origin",
        tungstenite::http::HeaderValue::from_static(BENCH_ORIGIN),
    );
    let connect = tokio_tungstenite::connect_async_with_config(req, None, true);
    let (ws, _) = tokio::time::timeout(T_SETUP, connect)
        .await
        .map_err(|_| format!("{label}: no upgrade within {T_SETUP:?}"))?
        .map_err(|e| match e {
            tungstenite::Error::Http(r) => format!(
                "{label}: upgrade refused with {}: {}",
                r.status(),
                r.body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default()
            ),
            e => format!("{label}: {e}"),
        })?;
    let (mut sink, mut stream) = ws.split();
    let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
    let (in_tx, inbox) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let ctx = ctx.clone();
    tokio::spawn(async move {
        while let Some(m) = stream.next().await {
            let at = Instant::now();
            let text = match m {
                Ok(Message::Text(t)) => t,
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            if let Some(p) = probe_of(&v) {
                if Some(p.dir) == counts {
                    ctx.rec.record(p.run, p.dir, at, p.sent_us);
                }
                continue;
            }
            match ty(&v) {
                "ack" | "typing" | "pong" => continue,
                "error" => ctx.error_frame(&label, &v),
                _ => {}
            }
            let _ = in_tx.send((at, v));
        }
    });
    Ok(Ws { out, inbox })
}

/// The two sockets of one conversation.
struct Pair {
    v: Ws,
    a: Ws,
}

/// What keeps a system's conversations alive during its runs.
struct Setup {
    pairs: Vec<Pair>,
    _tenants: Vec<OursTenant>,
}

// ---------------------------------------------------------------- the relay

fn relay_url(ctx: &Ctx, conv: &str, role: &str) -> String {
    ctx.ws(&format!("/bench/relay/{conv}/ws?role={role}"))
}

async fn relay_pair(ctx: &Arc<Ctx>, conv: String) -> R<Pair> {
    let v = open_ws(
        ctx,
        &relay_url(ctx, &conv, "visitor"),
        Some(Dir::AgentToVisitor),
        format!("relay {conv} visitor"),
    )
    .await?;
    let a = open_ws(
        ctx,
        &relay_url(ctx, &conv, "agent"),
        Some(Dir::VisitorToAgent),
        format!("relay {conv} agent"),
    )
    .await?;
    Ok(Pair { v, a })
}

async fn relay_setup(ctx: &Arc<Ctx>, n: usize) -> R<Setup> {
    let s = ctx.next_id();
    let pairs: Vec<R<Pair>> = stream::iter(0..n)
        .map(|i| relay_pair(ctx, format!("r{s}-{i}")))
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    Ok(Setup {
        pairs: pairs.into_iter().collect::<R<Vec<_>>>()?,
        _tenants: vec![],
    })
}

// ---------------------------------------------------------------- ours

/// What the agent bots of one tenant saw.
#[derive(Default)]
struct Shared {
    offers: Mutex<HashMap<String, Instant>>,
    offer_n: Notify,
    tickets: Mutex<HashMap<String, String>>,
    ticket_n: Notify,
    available: AtomicUsize,
    avail_n: Notify,
    rona: AtomicUsize,
}

impl Shared {
    async fn ticket(&self, conv: &str, timeout: Duration) -> R<String> {
        let mut got = None;
        wait_until(&self.ticket_n, Instant::now() + timeout, || {
            got = lock(&self.tickets).remove(conv);
            got.is_some()
        })
        .await;
        got.ok_or_else(|| {
            format!(
                "no ticket for conversation {conv} within {timeout:?} (offers seen: {}, agents in RONA: {})",
                lock(&self.offers).contains_key(conv),
                self.rona.load(Ordering::Relaxed)
            )
        })
    }
}

/// A tenant whose agents are signed in, Available, and accept every offer.
struct OursTenant {
    site: String,
    shared: Arc<Shared>,
    _agents: Vec<mpsc::UnboundedSender<Message>>,
}

/// Reads an agent's control socket: accepts every offer, files tickets.
async fn bot(
    mut inbox: mpsc::UnboundedReceiver<(Instant, Value)>,
    out: mpsc::WeakUnboundedSender<Message>,
    sh: Arc<Shared>,
) {
    while let Some((at, v)) = inbox.recv().await {
        match ty(&v) {
            "offer" => {
                let Some(conv) = v["offer"]["conversation"].as_str() else {
                    continue;
                };
                lock(&sh.offers).entry(conv.to_owned()).or_insert(at);
                sh.offer_n.notify_waiters();
                if let Some(o) = out.upgrade() {
                    let _ = o.send(Message::text(
                        json!({ "v": 1, "type": "accept", "conversation": conv }).to_string(),
                    ));
                }
            }
            "ticket" => {
                if let (Some(c), Some(t)) = (v["conversation"].as_str(), v["ticket"].as_str()) {
                    lock(&sh.tickets).insert(c.to_owned(), t.to_owned());
                    sh.ticket_n.notify_waiters();
                }
            }
            "event" if v["event"]["event"] == "state" => {
                match v["event"]["state"]["state"].as_str() {
                    Some("available") => {
                        sh.available.fetch_add(1, Ordering::Relaxed);
                        sh.avail_n.notify_waiters();
                    }
                    Some("rona") => {
                        let before = sh.rona.fetch_add(1, Ordering::Relaxed);
                        if before == 0 {
                            eprintln!("bench: an agent went to RONA (an offer expired)");
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

async fn ours_agent(
    ctx: &Arc<Ctx>,
    tenant: &str,
    id: &str,
    sh: Arc<Shared>,
) -> R<mpsc::UnboundedSender<Message>> {
    let (st, body) = http(
        ctx,
        "POST",
        "/api/v1/agent/sign-in",
        Some(&json!({ "tenant": tenant, "agent": id, "password": PASSWORD })),
        None,
    )
    .await?;
    if st != 200 {
        return Err(format!("sign-in of {tenant}/{id}: {st} {body}"));
    }
    let token = body["token"]
        .as_str()
        .ok_or_else(|| format!("sign-in of {tenant}/{id}: no token in {body}"))?;
    let (st, t) = http(ctx, "POST", "/api/v1/agent/ticket", None, Some(token)).await?;
    let ticket = t["ticket"]
        .as_str()
        .ok_or_else(|| format!("ticket of {tenant}/{id}: {st} {t}"))?;
    let mut ws = open_ws(
        ctx,
        &ctx.ws(&format!("/api/v1/agent/ws?ticket={}", enc(ticket))),
        None,
        format!("agent {tenant}/{id}"),
    )
    .await?;
    ws.wait_for(&format!("snapshot of {tenant}/{id}"), T_SETUP, |f| {
        ty(f) == "snapshot"
    })
    .await?;
    ws.send(&json!({ "v": 1, "type": "set_state", "state": { "state": "available" } }));
    let Ws { out, inbox } = ws;
    tokio::spawn(bot(inbox, out.downgrade(), sh));
    Ok(out)
}

/// Creates a tenant with one site and one queue and `agents` agents of `capacity`,
/// signs them all in and makes them Available.
async fn ours_tenant(ctx: &Arc<Ctx>, agents: usize, capacity: usize) -> R<OursTenant> {
    let tenant = format!("bench{}", ctx.next_id());
    let site = format!("{tenant}-site");
    let ids: Vec<String> = (0..agents).map(|k| format!("a{k}")).collect();
    let cfg = json!({
        "config": {
            "name": tenant,
            "sites": [{ "key": site, "name": "Bench", "allowed_origins": [BENCH_ORIGIN], "queue": "q1" }],
            "queues": [{
                "id": "q1", "name": "Bench",
                "offer_timeout_secs": 60,
                "inactivity_timeout_secs": 86_400,
                "max_wait_secs": 86_400,
                "max_queue_length": 10_000
            }],
            "agents": ids.iter().map(|id| json!({
                "id": id, "name": format!("Agent {id}"), "capacity": capacity, "queues": ["q1"]
            })).collect::<Vec<_>>(),
            "idle_reasons": [{ "id": "break", "label": "Break" }],
            "wrap_up_reasons": [{ "id": "solved", "label": "Solved" }],
            "max_open_conversations": 10_000
        },
        "passwords": ids.iter().map(|id| (id.clone(), json!(PASSWORD))).collect::<serde_json::Map<_, _>>()
    });
    let (st, body) = http(
        ctx,
        "PUT",
        &format!("/api/v1/admin/tenants/{tenant}/config"),
        Some(&cfg),
        Some(tests::ADMIN_TOKEN),
    )
    .await?;
    if st != 200 {
        return Err(format!("config of {tenant}: {st} {body}"));
    }
    let shared = Arc::new(Shared::default());
    let outs: Vec<R<_>> = stream::iter(ids.iter())
        .map(|id| ours_agent(ctx, &tenant, id, shared.clone()))
        .buffer_unordered(SIGN_IN_CONCURRENCY)
        .collect()
        .await;
    let outs = outs.into_iter().collect::<R<Vec<_>>>()?;
    let all = wait_until(&shared.avail_n, Instant::now() + T_SETUP, || {
        shared.available.load(Ordering::Relaxed) >= agents
    })
    .await;
    if !all {
        eprintln!(
            "bench: {tenant}: only {} of {agents} agents reported state available (continuing)",
            shared.available.load(Ordering::Relaxed)
        );
    }
    Ok(OursTenant {
        site,
        shared,
        _agents: outs,
    })
}

/// `POST /api/v1/conversations`; returns conversation id and visitor token.
async fn ours_start(ctx: &Ctx, site: &str, i: usize) -> R<(String, String)> {
    let (st, body) = http(
        ctx,
        "POST",
        "/api/v1/conversations",
        Some(&json!({ "site": site, "name": format!("Visitor {i}"), "text": format!("hello {i}"), "client_id": "first" })),
        None,
    )
    .await?;
    if st != 201 {
        return Err(format!("start on {site}: {st} {body}"));
    }
    match (body["conversation"].as_str(), body["token"].as_str()) {
        (Some(c), Some(t)) => Ok((c.to_owned(), t.to_owned())),
        _ => Err(format!("start on {site}: no conversation/token in {body}")),
    }
}

async fn ours_visitor(ctx: &Arc<Ctx>, conv: &str, token: &str, counts: Option<Dir>) -> R<Ws> {
    // The conversation is created by the start's first delivery: retry a 404 briefly.
    let deadline = Instant::now() + T_SETUP;
    let ticket = loop {
        let path = format!("/api/v1/conversations/{}/ticket", enc(conv));
        let (st, t) = http(ctx, "POST", &path, None, Some(token)).await?;
        match (st, t["ticket"].as_str()) {
            (200, Some(t)) => break t.to_owned(),
            (404, _) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => return Err(format!("ticket of visitor {conv}: {st} {t}")),
        }
    };
    let mut v = open_ws(
        ctx,
        &ctx.ws(&format!(
            "/api/v1/conversations/{}/ws?ticket={}&after=0",
            enc(conv),
            enc(&ticket)
        )),
        counts,
        format!("visitor {conv}"),
    )
    .await?;
    v.wait_for(&format!("welcome of visitor {conv}"), T_SETUP, |f| {
        ty(f) == "welcome"
    })
    .await?;
    Ok(v)
}

/// One active conversation: started, accepted by a bot, both chat sockets open.
async fn ours_conv(ctx: &Arc<Ctx>, t: &OursTenant, i: usize) -> R<Pair> {
    let (conv, token) = ours_start(ctx, &t.site, i).await?;
    let v = ours_visitor(ctx, &conv, &token, Some(Dir::AgentToVisitor)).await?;
    let ticket = t.shared.ticket(&conv, T_SETUP).await?;
    let mut a = open_ws(
        ctx,
        &ctx.ws(&format!(
            "/api/v1/conversations/{}/agent-ws?ticket={}&after=0",
            enc(&conv),
            enc(&ticket)
        )),
        Some(Dir::VisitorToAgent),
        format!("agent chat {conv}"),
    )
    .await?;
    a.wait_for(&format!("welcome of agent chat {conv}"), T_SETUP, |f| {
        ty(f) == "welcome"
    })
    .await?;
    Ok(Pair { v, a })
}

/// `n` active conversations spread round-robin over `tenants` tenants.
async fn ours_setup(ctx: &Arc<Ctx>, n: usize, tenants: usize) -> R<Setup> {
    let tenants = tenants.clamp(1, n.max(1));
    let per = n.div_ceil(tenants);
    let mut ts = vec![];
    for _ in 0..tenants {
        ts.push(ours_tenant(ctx, per.div_ceil(MAX_CAPACITY) + 1, MAX_CAPACITY).await?);
    }
    let pairs: Vec<R<Pair>> = stream::iter(0..n)
        .map(|i| ours_conv(ctx, &ts[i % tenants], i))
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    Ok(Setup {
        pairs: pairs.into_iter().collect::<R<Vec<_>>>()?,
        _tenants: ts,
    })
}

// ---------------------------------------------------------------- runs

trait Merge {
    fn merge(&mut self, o: Self);
}

/// Raw figures of one message run.
#[derive(Debug, Default, Clone)]
struct RawMsg {
    sent: u64,
    lat: [Vec<u64>; 2],
    window: Duration,
    /// From the first scheduled send to the last receipt.
    span: Duration,
    cpu_ticks: Option<u64>,
}

impl RawMsg {
    fn recv(&self) -> u64 {
        (self.lat[0].len() + self.lat[1].len()) as u64
    }
}

impl Merge for RawMsg {
    fn merge(&mut self, o: Self) {
        self.sent += o.sent;
        let [a, b] = o.lat;
        self.lat[0].extend(a);
        self.lat[1].extend(b);
        self.window += o.window;
        self.span += o.span;
        self.cpu_ticks = self.cpu_ticks.zip(o.cpu_ticks).map(|(x, y)| x + y);
    }
}

/// Sends at `rate` msg/s per conversation for `dur`, alternating direction, open loop.
async fn drive(ctx: &Arc<Ctx>, pairs: &[Pair], rate: f64, dur: Duration) -> RawMsg {
    let run = ctx.rec.open();
    let cpu0 = ctx.cpu();
    let period = Duration::from_secs_f64(1.0 / rate);
    let t0 = Instant::now() + Duration::from_millis(20);
    let end = t0 + dur;
    let n = pairs.len().max(1);
    let mut set = JoinSet::new();
    for (i, p) in pairs.iter().enumerate() {
        let (vout, aout) = (p.v.out.clone(), p.a.out.clone());
        let first = t0 + period.mul_f64(i as f64 / n as f64);
        set.spawn(async move {
            let mut iv = tokio::time::interval_at(tokio::time::Instant::from_std(first), period);
            iv.set_missed_tick_behavior(MissedTickBehavior::Burst);
            let mut k: u64 = 0;
            loop {
                let at = iv.tick().await.into_std();
                if at >= end {
                    return k;
                }
                let (dir, out) = if (k + i as u64).is_multiple_of(2) {
                    (Dir::VisitorToAgent, &vout)
                } else {
                    (Dir::AgentToVisitor, &aout)
                };
                let _ = out.send(send_frame(run, dir, i, k, us_since_epoch(at)));
                k += 1;
            }
        });
    }
    let mut sent = 0;
    while let Some(r) = set.join_next().await {
        sent += r.unwrap_or(0);
    }
    ctx.rec.wait(run, sent, Instant::now() + DRAIN).await;
    let cpu1 = ctx.cpu();
    let rec = ctx.rec.close(run);
    RawMsg {
        sent,
        lat: rec.lat,
        window: dur,
        span: rec
            .last
            .map_or(Duration::ZERO, |l| l.saturating_duration_since(t0)),
        cpu_ticks: cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)),
    }
}

fn log_msg(what: &str, sys: usize, r: &R<RawMsg>) {
    match r {
        Ok(m) => {
            let all = sorted(m.lat.concat());
            eprintln!(
                "bench: {what} {}: sent {} received {} p50 {:.2} ms p99 {:.2} ms",
                SYS[sys],
                m.sent,
                m.recv(),
                pct_ms(&all, 0.5).unwrap_or(f64::NAN),
                pct_ms(&all, 0.99).unwrap_or(f64::NAN)
            );
        }
        Err(e) => eprintln!("bench: {what} {}: FAILED: {e}", SYS[sys]),
    }
}

/// Raw figures of a start run (phase 4).
#[derive(Debug, Default, Clone)]
struct RawStart {
    attempted: u64,
    started: u64,
    lat: Vec<u64>,
}

impl Merge for RawStart {
    fn merge(&mut self, o: Self) {
        self.attempted += o.attempted;
        self.started += o.started;
        self.lat.extend(o.lat);
    }
}

/// Open-loop ticks: calls `f(k, scheduled_time)` for `n` ticks at `rate` per second.
async fn ticks(n: usize, rate: f64, mut f: impl FnMut(usize, Instant)) {
    let period = Duration::from_secs_f64(1.0 / rate);
    let t0 = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut iv = tokio::time::interval_at(t0, period);
    iv.set_missed_tick_behavior(MissedTickBehavior::Burst);
    for k in 0..n {
        let at = iv.tick().await.into_std();
        f(k, at);
    }
}

async fn ours_starts(ctx: &Arc<Ctx>) -> R<RawStart> {
    let cfg = &ctx.cfg;
    let n = (cfg.start_rate * cfg.start_phase.as_secs_f64()).round() as usize;
    let t = ours_tenant(ctx, n.div_ceil(MAX_CAPACITY) + 2, MAX_CAPACITY).await?;
    let starts: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let failed = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    ticks(n, cfg.start_rate, |k, at| {
        let (ctx, site, starts, failed) =
            (ctx.clone(), t.site.clone(), starts.clone(), failed.clone());
        set.spawn(async move {
            match ours_start(&ctx, &site, k).await {
                Ok((conv, _)) => lock(&starts).push((conv, at)),
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("bench: start failed: {e}");
                    }
                }
            }
        });
    })
    .await;
    while set.join_next().await.is_some() {}
    let starts = std::mem::take(&mut *lock(&starts));
    let sh = &t.shared;
    wait_until(&sh.offer_n, Instant::now() + DRAIN, || {
        let o = lock(&sh.offers);
        starts.iter().all(|(c, _)| o.contains_key(c))
    })
    .await;
    let offers = lock(&sh.offers);
    let lat = starts
        .iter()
        .filter_map(|(c, s)| {
            offers
                .get(c)
                .map(|o| us_of(o.saturating_duration_since(*s)))
        })
        .collect();
    Ok(RawStart {
        attempted: n as u64,
        started: starts.len() as u64,
        lat,
    })
}

fn us_of(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Relay analogue of a start: the agent socket of each new conversation waits; the
/// "start" connects the visitor socket and sends the first frame; the "offer" is
/// that frame arriving at the agent.
async fn relay_starts(ctx: &Arc<Ctx>) -> R<RawStart> {
    let cfg = &ctx.cfg;
    let n = (cfg.start_rate * cfg.start_phase.as_secs_f64()).round() as usize;
    let s = ctx.next_id();
    let agents: Vec<R<Ws>> = stream::iter(0..n)
        .map(|k| {
            let conv = format!("s{s}-{k}");
            async move {
                open_ws(
                    ctx,
                    &relay_url(ctx, &conv, "agent"),
                    Some(Dir::VisitorToAgent),
                    format!("relay {conv} agent"),
                )
                .await
            }
        })
        .buffer_unordered(OPEN_CONCURRENCY)
        .collect()
        .await;
    let _agents = agents.into_iter().collect::<R<Vec<_>>>()?;
    let run = ctx.rec.open();
    let visitors: Arc<Mutex<Vec<Ws>>> = Arc::default();
    let failed = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    ticks(n, cfg.start_rate, |k, at| {
        let (ctx, visitors, failed) = (ctx.clone(), visitors.clone(), failed.clone());
        set.spawn(async move {
            let conv = format!("s{s}-{k}");
            let url = relay_url(&ctx, &conv, "visitor");
            match open_ws(&ctx, &url, None, format!("relay {conv} visitor")).await {
                Ok(ws) => {
                    let _ = ws.out.send(send_frame(
                        run,
                        Dir::VisitorToAgent,
                        k,
                        0,
                        us_since_epoch(at),
                    ));
                    lock(&visitors).push(ws);
                }
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("bench: relay start failed: {e}");
                    }
                }
            }
        });
    })
    .await;
    while set.join_next().await.is_some() {}
    let started = (n - failed.load(Ordering::Relaxed)) as u64;
    ctx.rec.wait(run, started, Instant::now() + DRAIN).await;
    let [lat, _] = ctx.rec.close(run).lat;
    Ok(RawStart {
        attempted: n as u64,
        started,
        lat,
    })
}

/// Raw figures of phases 5 and 6.
#[derive(Debug, Default, Clone)]
struct RawScale {
    /// Per step: other open conversations, the run.
    steps: Vec<(usize, RawMsg)>,
    /// RSS (KiB) before and after opening `idle` conversations.
    rss: Vec<(u64, u64)>,
}

impl Merge for RawScale {
    fn merge(&mut self, o: Self) {
        for (i, (n, m)) in o.steps.into_iter().enumerate() {
            match self.steps.get_mut(i) {
                Some(s) => s.1.merge(m),
                None => self.steps.push((n, m)),
            }
        }
        self.rss.extend(o.rss);
    }
}

#[derive(Clone, Copy)]
enum Others<'a> {
    Relay(u32),
    Ours(&'a OursTenant),
}

/// One more idle open conversation: a visitor socket (ours: a queued chat).
async fn open_other(ctx: &Arc<Ctx>, kind: Others<'_>, k: usize) -> R<Ws> {
    match kind {
        Others::Relay(s) => {
            let conv = format!("o{s}-{k}");
            open_ws(
                ctx,
                &relay_url(ctx, &conv, "visitor"),
                None,
                format!("relay {conv} visitor"),
            )
            .await
        }
        Others::Ours(t) => {
            let (conv, token) = ours_start(ctx, &t.site, k).await?;
            ours_visitor(ctx, &conv, &token, None).await
        }
    }
}

async fn scale(ctx: &Arc<Ctx>, sys: usize, pair: Pair, kind: Others<'_>) -> R<RawScale> {
    let cfg = &ctx.cfg;
    let mut others: Vec<Ws> = vec![];
    let mut out = RawScale::default();
    for &target in &cfg.others {
        let from = others.len();
        if target > from {
            eprintln!(
                "bench: phase 5 {}: opening {} more conversations",
                SYS[sys],
                target - from
            );
            let before = ctx.rss();
            let opened: Vec<R<Ws>> = stream::iter(from..target)
                .map(|k| open_other(ctx, kind, k))
                .buffer_unordered(OPEN_CONCURRENCY)
                .collect()
                .await;
            for w in opened {
                others.push(w?);
            }
            let after = ctx.rss();
            if from == 0 && target == cfg.idle {
                if let (Some(b), Some(a)) = (before, after) {
                    out.rss.push((b, a));
                }
            }
        }
        let m = drive(ctx, std::slice::from_ref(&pair), cfg.rate, cfg.phase).await;
        log_msg(&format!("phase 5 ({target} others)"), sys, &Ok(m.clone()));
        out.steps.push((target, m));
    }
    Ok(out)
}

async fn relay_scale(ctx: &Arc<Ctx>) -> R<RawScale> {
    let s = ctx.next_id();
    let pair = relay_pair(ctx, format!("m{s}")).await?;
    scale(ctx, RELAY, pair, Others::Relay(s)).await
}

async fn ours_scale(ctx: &Arc<Ctx>) -> R<RawScale> {
    // One agent of capacity 1: the measured chat is active, every other one queues.
    let t = ours_tenant(ctx, 1, 1).await?;
    let pair = ours_conv(ctx, &t, 0).await?;
    scale(ctx, OURS, pair, Others::Ours(&t)).await
}

// ---------------------------------------------------------------- the report

struct Acc<T> {
    data: Option<T>,
    errors: Vec<String>,
}

impl<T> Default for Acc<T> {
    fn default() -> Self {
        Acc {
            data: None,
            errors: vec![],
        }
    }
}

impl<T: Merge> Acc<T> {
    fn add(&mut self, r: R<T>) {
        match r {
            Ok(t) => match &mut self.data {
                Some(d) => d.merge(t),
                None => self.data = Some(t),
            },
            Err(e) => self.errors.push(e),
        }
    }
}

#[derive(Default)]
struct Report {
    p1: [Acc<RawMsg>; 2],
    p2: [Acc<RawMsg>; 2],
    p3: [Acc<RawMsg>; 2],
    p4: [Acc<RawStart>; 2],
    p5: [Acc<RawScale>; 2],
}

struct Row {
    label: String,
    v: [Option<f64>; 2],
    digits: usize,
}

struct Section {
    title: String,
    rows: Vec<Row>,
    notes: Vec<String>,
}

fn row(label: impl Into<String>, v: [Option<f64>; 2], digits: usize) -> Row {
    Row {
        label: label.into(),
        v,
        digits,
    }
}

fn both<T, F: Fn(&T) -> Option<f64>>(acc: &[Acc<T>; 2], f: F) -> [Option<f64>; 2] {
    [
        acc[0].data.as_ref().and_then(&f),
        acc[1].data.as_ref().and_then(&f),
    ]
}

fn failures<T>(acc: &[Acc<T>; 2]) -> Vec<String> {
    let mut notes = vec![];
    for (s, a) in acc.iter().enumerate() {
        for e in &a.errors {
            notes.push(format!("{} FAILED: {e}", SYS[s]));
        }
    }
    notes
}

fn msg_section(title: String, acc: &[Acc<RawMsg>; 2]) -> Section {
    let lat = |d: Option<usize>, q: f64| {
        move |m: &RawMsg| {
            let v = match d {
                Some(i) => m.lat[i].clone(),
                None => m.lat.concat(),
            };
            pct_ms(&sorted(v), q)
        }
    };
    let secs = |m: &RawMsg| m.window.max(m.span).as_secs_f64();
    Section {
        title,
        rows: vec![
            row("p50 visitor→agent, ms", both(acc, lat(Some(0), 0.5)), 2),
            row("p99 visitor→agent, ms", both(acc, lat(Some(0), 0.99)), 2),
            row("p50 agent→visitor, ms", both(acc, lat(Some(1), 0.5)), 2),
            row("p99 agent→visitor, ms", both(acc, lat(Some(1), 0.99)), 2),
            row("p50 both directions, ms", both(acc, lat(None, 0.5)), 2),
            row("p99 both directions, ms", both(acc, lat(None, 0.99)), 2),
            row(
                "offered msg/s",
                both(acc, |m| Some(m.sent as f64 / m.window.as_secs_f64())),
                0,
            ),
            row(
                "delivered msg/s",
                both(acc, |m| Some(m.recv() as f64 / secs(m))),
                0,
            ),
            row(
                "delivered / offered",
                both(acc, |m| {
                    (m.sent > 0).then(|| m.recv() as f64 / m.sent as f64)
                }),
                3,
            ),
            row(
                "workerd CPU ms per 1,000 msgs",
                both(acc, |m| {
                    let t = m.cpu_ticks? as f64;
                    (m.recv() > 0).then(|| t / CLK_TCK * 1000.0 / m.recv() as f64 * 1000.0)
                }),
                1,
            ),
        ],
        notes: failures(acc),
    }
}

fn sections(cfg: &Cfg, rep: &Report) -> Vec<Section> {
    let mut out = vec![
        msg_section(
            format!(
                "1. {} conversations × {} msg/s, one tenant",
                cfg.convs, cfg.rate
            ),
            &rep.p1,
        ),
        msg_section(
            format!(
                "2. {} conversations × {} msg/s over {} tenants",
                cfg.convs,
                cfg.rate,
                cfg.tenants.clamp(1, cfg.convs.max(1))
            ),
            &rep.p2,
        ),
        msg_section(
            format!(
                "3. capacity: {} msg/s offered over {} conversations for {} s",
                cfg.cap_rate,
                cfg.convs,
                cfg.cap_phase.as_secs()
            ),
            &rep.p3,
        ),
    ];
    let p4 = &rep.p4;
    let mut notes4 = vec![
        "relay: connect a new conversation's visitor socket and send its first frame → frame at the already connected agent socket".to_owned(),
        "ours: POST /api/v1/conversations → offer frame on an agent's control socket".to_owned(),
    ];
    notes4.extend(failures(p4));
    out.push(Section {
        title: format!(
            "4. chat start → offer shown, {} starts/s for {} s",
            cfg.start_rate,
            cfg.start_phase.as_secs()
        ),
        rows: vec![
            row(
                "p50 start → offer, ms",
                both(p4, |r| pct_ms(&sorted(r.lat.clone()), 0.5)),
                2,
            ),
            row(
                "p99 start → offer, ms",
                both(p4, |r| pct_ms(&sorted(r.lat.clone()), 0.99)),
                2,
            ),
            row(
                "starts accepted / attempted",
                both(p4, |r| {
                    (r.attempted > 0).then(|| r.started as f64 / r.attempted as f64)
                }),
                3,
            ),
            row(
                "offers / starts accepted",
                both(p4, |r| {
                    (r.started > 0).then(|| r.lat.len() as f64 / r.started as f64)
                }),
                3,
            ),
        ],
        notes: notes4,
    });
    let p5 = &rep.p5;
    let mut rows5 = vec![];
    for (i, n) in cfg.others.iter().enumerate() {
        let step = move |r: &RawScale| r.steps.get(i).map(|(_, m)| sorted(m.lat.concat()));
        rows5.push(row(
            format!("p50 with {n} other open conversations, ms"),
            both(p5, |r| step(r).and_then(|v| pct_ms(&v, 0.5))),
            2,
        ));
        rows5.push(row(
            format!("p99 with {n} other open conversations, ms"),
            both(p5, |r| step(r).and_then(|v| pct_ms(&v, 0.99))),
            2,
        ));
        rows5.push(row(
            format!("delivered / offered with {n} others"),
            both(p5, |r| {
                r.steps
                    .get(i)
                    .and_then(|(_, m)| (m.sent > 0).then(|| m.recv() as f64 / m.sent as f64))
            }),
            3,
        ));
    }
    let mut notes5 = vec![
        "others: relay = a visitor socket on its own relay object; ours = a started chat, queued (the only agent has capacity 1), visitor socket open".to_owned(),
    ];
    notes5.extend(failures(p5));
    out.push(Section {
        title: format!(
            "5. one conversation at {} msg/s with other open conversations in the same tenant",
            cfg.rate
        ),
        rows: rows5,
        notes: notes5,
    });
    let idle = cfg.idle.max(1) as f64;
    out.push(Section {
        title: format!(
            "6. workerd resident memory with {} idle connected conversations",
            cfg.idle
        ),
        rows: vec![
            row(
                "RSS before, MiB",
                both(p5, |r| mean(&r.rss, |(b, _)| *b as f64 / 1024.0)),
                1,
            ),
            row(
                format!("RSS with {} idle conversations, MiB", cfg.idle),
                both(p5, |r| mean(&r.rss, |(_, a)| *a as f64 / 1024.0)),
                1,
            ),
            row(
                "increase, MiB",
                both(p5, |r| mean(&r.rss, |(b, a)| (*a as f64 - *b as f64) / 1024.0)),
                1,
            ),
            row(
                "increase per conversation, KiB",
                both(p5, |r| mean(&r.rss, |(b, a)| (*a as f64 - *b as f64) / idle)),
                1,
            ),
        ],
        notes: vec![
            "RSS of all workerd processes of this server (both systems live in it; the increase is what counts)".to_owned(),
        ],
    });
    out
}

/// The mean of `f` over `v`.
fn mean(v: &[(u64, u64)], f: impl Fn(&(u64, u64)) -> f64) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().map(f).sum::<f64>() / v.len() as f64)
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "n/a".into(),
    }
}

fn print_report(cfg: &Cfg, secs: &[Section], errors: u64) {
    println!(
        "## Benchmark: relay vs ours (wrangler dev on loopback{}, {} round{})\n",
        if cfg.smoke { ", smoke" } else { "" },
        cfg.rounds,
        if cfg.rounds == 1 { "" } else { "s" }
    );
    for s in secs {
        println!("### {}\n", s.title);
        println!("| figure | relay | ours | ours / relay |");
        println!("|---|---:|---:|---:|");
        for r in &s.rows {
            let ratio = match r.v {
                [Some(a), Some(b)] if a != 0.0 && a.is_finite() && b.is_finite() => {
                    format!("{:.2}", b / a)
                }
                _ => "n/a".into(),
            };
            println!(
                "| {} | {} | {} | {} |",
                r.label,
                fmt(r.v[0], r.digits),
                fmt(r.v[1], r.digits),
                ratio
            );
        }
        for n in &s.notes {
            println!("\n- {n}");
        }
        println!();
    }
    println!("Error frames received (both systems, all phases): {errors}");
}

fn any_failed(rep: &Report) -> bool {
    rep.p1
        .iter()
        .chain(&rep.p2)
        .chain(&rep.p3)
        .any(|a| !a.errors.is_empty())
        || rep.p4.iter().any(|a| !a.errors.is_empty())
        || rep.p5.iter().any(|a| !a.errors.is_empty())
}

// ---------------------------------------------------------------- main

async fn run_all(ctx: Arc<Ctx>) -> Report {
    let cfg = ctx.cfg.clone();
    let mut rep = Report::default();
    for round in 0..cfg.rounds {
        let order = if round % 2 == 0 {
            [RELAY, OURS]
        } else {
            [OURS, RELAY]
        };
        eprintln!("bench: round {} of {}", round + 1, cfg.rounds);

        // Phases 1 and 3 share their conversations.
        if cfg.runs(1) || cfg.runs(3) {
            eprintln!(
                "bench: phase 1: setting up {} conversations per system",
                cfg.convs
            );
            let setups = [
                relay_setup(&ctx, cfg.convs).await,
                ours_setup(&ctx, cfg.convs, 1).await,
            ];
            for &s in order.iter().filter(|_| cfg.runs(1)) {
                let r = match &setups[s] {
                    Ok(st) => Ok(drive(&ctx, &st.pairs, cfg.rate, cfg.phase).await),
                    Err(e) => Err(e.clone()),
                };
                log_msg("phase 1", s, &r);
                rep.p1[s].add(r);
            }
            let per_conv = cfg.cap_rate / cfg.convs.max(1) as f64;
            for &s in order.iter().filter(|_| cfg.runs(3)) {
                let r = match &setups[s] {
                    Ok(st) => Ok(drive(&ctx, &st.pairs, per_conv, cfg.cap_phase).await),
                    Err(e) => Err(e.clone()),
                };
                log_msg("phase 3", s, &r);
                rep.p3[s].add(r);
            }
            drop(setups);
        }

        if cfg.runs(2) {
            eprintln!(
                "bench: phase 2: setting up {} conversations over {} tenants",
                cfg.convs, cfg.tenants
            );
            let setups = [
                relay_setup(&ctx, cfg.convs).await,
                ours_setup(&ctx, cfg.convs, cfg.tenants).await,
            ];
            for &s in &order {
                let r = match &setups[s] {
                    Ok(st) => Ok(drive(&ctx, &st.pairs, cfg.rate, cfg.phase).await),
                    Err(e) => Err(e.clone()),
                };
                log_msg("phase 2", s, &r);
                rep.p2[s].add(r);
            }
            drop(setups);
        }

        for &s in order.iter().filter(|_| cfg.runs(5) || cfg.runs(6)) {
            eprintln!("bench: phases 5 and 6 {}", SYS[s]);
            let r = if s == RELAY {
                relay_scale(&ctx).await
            } else {
                ours_scale(&ctx).await
            };
            if let Err(e) = &r {
                eprintln!("bench: phase 5 {}: FAILED: {e}", SYS[s]);
            }
            rep.p5[s].add(r);
        }
        // Last: thousands of starts leave this wrangler dev holding many sockets.
        for &s in order.iter().filter(|_| cfg.runs(4)) {
            eprintln!("bench: phase 4 {}", SYS[s]);
            let r = if s == RELAY {
                relay_starts(&ctx).await
            } else {
                ours_starts(&ctx).await
            };
            match &r {
                Ok(x) => eprintln!(
                    "bench: phase 4 {}: attempted {} started {} offered {}",
                    SYS[s],
                    x.attempted,
                    x.started,
                    x.lat.len()
                ),
                Err(e) => eprintln!("bench: phase 4 {}: FAILED: {e}", SYS[s]),
            }
            rep.p4[s].add(r);
        }
    }
    rep
}

fn main() {
    let cfg = match Cfg::from_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    epoch();
    let server = match cfg.port {
        Some(_) => None,
        None => {
            eprintln!("bench: starting wrangler dev (this builds the worker first) …");
            // Durable Object storage on tmpfs (when there is one) unless --disk: the
            // figures then measure the service, not this VM's disk flushes.
            let shm = std::path::Path::new("/dev/shm");
            let root = if cfg.disk || !shm.is_dir() {
                std::env::temp_dir()
            } else {
                shm.to_path_buf()
            };
            eprintln!("bench: state under {}", root.display());
            let s = tests::Server::start_in(
                &root,
                &[
                    ("BENCH_RELAY", "true"),
                    ("RATE_START_PER_MINUTE", "1000000"),
                    ("RATE_VISITOR_PER_MINUTE", "1000000"),
                    ("RATE_SIGN_IN_PER_MINUTE", "1000000"),
                ],
            );
            eprintln!("bench: wrangler dev answers on port {}", s.port);
            Some(s)
        }
    };
    let (port, state_dir) = match &server {
        Some(s) => (s.port, s.state_dir.display().to_string()),
        // Someone else's server: every workerd process of the machine counts.
        None => (cfg.port.unwrap_or_default(), String::new()),
    };
    let ctx = Arc::new(Ctx {
        cfg: cfg.clone(),
        port,
        state_dir,
        rec: Recorder::default(),
        errors: AtomicU64::new(0),
        seq: AtomicU32::new(0),
    });
    if ctx.cpu().is_none() {
        eprintln!("bench: no workerd process found under this wrangler; CPU and RSS will be n/a");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let rep = rt.block_on(run_all(ctx.clone()));
    rt.shutdown_timeout(Duration::from_secs(5));
    print_report(
        &cfg,
        &sections(&cfg, &rep),
        ctx.errors.load(Ordering::Relaxed),
    );
    let failed = any_failed(&rep);
    drop(server);
    if failed {
        std::process::exit(1);
    }
}
