//! `dssim serve`: a local web page over live runs.
//!
//! ```text
//!  browser --HTTP--> axum (tokio, 2 threads) --Mutex--> Run { demos: [Demo; 1 or 2] }
//!     ^                                                   ^
//!     +--- server-sent events (<= 20 frames/s) ---------- + stepped by one std thread
//!                                                           per run, paced to the clock
//! ```
//!
//! The page (HTML, JS, CSS in `src/assets/`, embedded with `include_str!`) picks an
//! experiment from the experiments folder or takes pasted TOML, draws the built topology,
//! and streams the time series while the run is paced at 1×, 10×, 100× or as fast as it
//! goes. Actions (kill, recover, cut, heal, load, and changes of workers, instances, TTL
//! and the balancing algorithm) are recorded as timed changes of the
//! model ([`demo::Demo`]), so the exported experiment reproduces the demo byte for byte.
//!
//! Guards: binds 127.0.0.1 by default; a request whose `Host` is not this server or whose
//! `Origin` is another site is refused (403); uploads are capped at [`MAX_UPLOAD`] bytes;
//! at most [`MAX_RUNS`] runs live at once.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dssim_engine::SimTime;
use dssim_lab::LabError;
use serde::Deserialize;
use serde_json::{json, Value};

pub mod demo;

use demo::{Action, Demo};

/// The largest experiment text or request body accepted.
pub const MAX_UPLOAD: usize = 256 * 1024;
/// Runs alive at once (each holds a thread and a world).
pub const MAX_RUNS: usize = 4;
/// Frames per second sent to a page at most.
pub const MAX_FPS: u64 = 20;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// How `dssim serve` was started.
#[derive(Clone, Debug)]
pub struct Options {
    /// The experiment to open first.
    pub file: Option<PathBuf>,
    /// Address to bind (127.0.0.1 unless asked).
    pub host: IpAddr,
    /// Port (0: any free port).
    pub port: u16,
}

/// Starts the server and serves until the process ends. Prints the URL first.
pub fn serve(opts: Options) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the server runtime: {e}"))?;
    rt.block_on(async move {
        let addr = SocketAddr::new(opts.host, opts.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        let app = app(&opts, bound);
        let shown = if opts.host.is_unspecified() {
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), bound.port())
        } else {
            bound
        };
        println!("dssim serve: http://{shown}/  (Ctrl-C to stop)");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        axum::serve(listener, app)
            .await
            .map_err(|e| format!("server failed: {e}"))
    })
}

/// The experiments folder: the given file's folder, else `./experiments`, else `.`.
fn experiments_dir(file: Option<&Path>) -> PathBuf {
    if let Some(dir) = file.and_then(Path::parent) {
        return if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_path_buf()
        };
    }
    let d = PathBuf::from("experiments");
    if d.is_dir() {
        d
    } else {
        PathBuf::from(".")
    }
}

struct AppState {
    dir: PathBuf,
    initial: Option<String>,
    runs: Mutex<BTreeMap<u64, Arc<Run>>>,
    next: AtomicU64,
    hosts: Vec<String>,
    any_host: bool,
}

/// The router, for `serve` and tests.
fn app(opts: &Options, bound: SocketAddr) -> Router {
    let port = bound.port();
    let mut hosts = vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ];
    hosts.push(bound.to_string());
    let state = Arc::new(AppState {
        dir: experiments_dir(opts.file.as_deref()),
        initial: opts
            .file
            .as_ref()
            .and_then(|f| f.file_name())
            .map(|f| f.to_string_lossy().to_string()),
        runs: Mutex::new(BTreeMap::new()),
        next: AtomicU64::new(1),
        hosts,
        any_host: opts.host.is_unspecified(),
    });
    Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript", APP_JS) }),
        )
        .route("/app.css", get(|| async { asset("text/css", APP_CSS) }))
        .route("/api/experiments", get(list_experiments))
        .route("/api/experiments/{name}", get(read_experiment))
        .route("/api/check", post(check))
        .route("/api/runs", post(create_run))
        .route("/api/runs/{id}", axum::routing::delete(delete_run))
        .route("/api/runs/{id}/control", post(control))
        .route("/api/runs/{id}/action", post(act))
        .route("/api/runs/{id}/export", get(export))
        .route("/api/runs/{id}/result", get(result))
        .route("/api/runs/{id}/events", get(events))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn fail(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

/// Refuses requests for another host name (DNS rebinding) and from other origins.
async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let h = req.headers();
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !st.any_host && !st.hosts.iter().any(|x| x == host) {
        return fail(
            StatusCode::FORBIDDEN,
            format!("host {host:?} is not this server"),
        );
    }
    if let Some(origin) = h.get(header::ORIGIN) {
        if origin.to_str().ok() != Some(format!("http://{host}").as_str()) {
            return fail(StatusCode::FORBIDDEN, "cross-origin requests are refused");
        }
    }
    if h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return fail(StatusCode::FORBIDDEN, "cross-site requests are refused");
    }
    next.run(req).await
}

fn experiment_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(".toml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

async fn list_experiments(State(st): State<Arc<AppState>>) -> Response {
    let list: Vec<Value> = experiment_names(&st.dir)
        .into_iter()
        .map(|n| {
            let description = std::fs::read_to_string(st.dir.join(&n))
                .ok()
                .and_then(|t| t.parse::<toml::Table>().ok())
                .and_then(|t| t.get("description")?.as_str().map(str::to_string))
                .unwrap_or_default();
            json!({ "name": n, "description": description })
        })
        .collect();
    Json(json!({
        "dir": st.dir.display().to_string(),
        "initial": st.initial,
        "experiments": list,
    }))
    .into_response()
}

async fn read_experiment(
    State(st): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    // Only the files the list shows: no paths.
    if !experiment_names(&st.dir).contains(&name) {
        return fail(StatusCode::NOT_FOUND, format!("no experiment {name:?}"));
    }
    match std::fs::read_to_string(st.dir.join(&name)) {
        Ok(t) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], t).into_response(),
        Err(e) => fail(StatusCode::NOT_FOUND, e.to_string()),
    }
}

/// A load error as the page shows it: the CLI's `file:line:column: message (hint)`.
fn errors_json(e: &LabError) -> Value {
    let one = |d: &dssim_lab::Diagnostic| {
        let (line, column) = match (&d.text, &d.span) {
            (Some(t), Some(s)) => {
                let (l, c) = dssim_lab::source::line_col(t, s.start);
                (Some(l), Some(c))
            }
            _ => (None, None),
        };
        json!({
            "text": format!("error: {d}"),
            "file": d.file.display().to_string(),
            "line": line,
            "column": column,
            "message": d.message,
            "help": d.help,
        })
    };
    let list: Vec<Value> = match e {
        LabError::Input(d) => vec![one(d)],
        LabError::Inputs(ds) => ds.iter().map(one).collect(),
        other => vec![json!({ "text": format!("error: {other}"), "message": other.to_string() })],
    };
    json!({ "errors": list })
}

#[derive(Deserialize)]
struct Upload {
    #[serde(default)]
    name: String,
    text: String,
    #[serde(default)]
    points: Vec<usize>,
    #[serde(default)]
    speed: Option<f64>,
}

fn load(st: &AppState, u: &Upload) -> Result<dssim_lab::Experiment, Response> {
    if u.text.len() > MAX_UPLOAD {
        return Err(fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the experiment is too large",
        ));
    }
    let name = if u.name.is_empty() {
        "upload.toml"
    } else {
        u.name.as_str()
    };
    demo::load_text(&st.dir, name, u.text.clone())
        .map_err(|e| (StatusCode::BAD_REQUEST, Json(errors_json(&e))).into_response())
}

fn point_labels(exp: &dssim_lab::Experiment) -> Vec<String> {
    (0..exp.points())
        .map(|p| {
            exp.spec(p * exp.replications as usize)
                .map(|s| {
                    exp.sweep
                        .iter()
                        .zip(&s.swept)
                        .map(|((k, _), v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        })
        .collect()
}

async fn check(State(st): State<Arc<AppState>>, Json(u): Json<Upload>) -> Response {
    match load(&st, &u) {
        Ok(exp) => Json(json!({
            "name": exp.name,
            "description": exp.description,
            "duration_s": exp.duration.as_secs_f64(),
            "points": point_labels(&exp),
        }))
        .into_response(),
        Err(r) => r,
    }
}

/// One live run: one demo, or two side by side in lockstep.
struct Run {
    demos: Mutex<Vec<Demo>>,
    ctl: Mutex<(f64, bool)>,
    tick: tokio::sync::watch::Sender<u64>,
    stop: AtomicBool,
    idle_since: Mutex<Option<Instant>>,
}

async fn create_run(State(st): State<Arc<AppState>>, Json(u): Json<Upload>) -> Response {
    let exp = match load(&st, &u) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let points = if u.points.is_empty() {
        vec![0]
    } else {
        u.points.clone()
    };
    if points.len() > 2 {
        return fail(StatusCode::BAD_REQUEST, "at most two variants side by side");
    }
    let mut demos = Vec::new();
    for &p in &points {
        match Demo::new(&exp, p) {
            Ok(d) => demos.push(d),
            Err(e) => return (StatusCode::BAD_REQUEST, Json(errors_json(&e))).into_response(),
        }
    }
    let id = {
        let mut runs = lock(&st.runs);
        // Runs nobody watches for a minute, or stopped, make room.
        runs.retain(|_, r| {
            let idle = lock(&r.idle_since).is_some_and(|t| t.elapsed() > Duration::from_secs(60));
            if idle {
                r.stop.store(true, Ordering::Relaxed);
            }
            !r.stop.load(Ordering::Relaxed)
        });
        if runs.len() >= MAX_RUNS {
            return fail(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{MAX_RUNS} runs are live already; stop one first"),
            );
        }
        let id = st.next.fetch_add(1, Ordering::Relaxed);
        let (tick, _) = tokio::sync::watch::channel(0);
        let run = Arc::new(Run {
            demos: Mutex::new(demos),
            ctl: Mutex::new((u.speed.unwrap_or(1.0), true)),
            tick,
            stop: AtomicBool::new(false),
            idle_since: Mutex::new(Some(Instant::now())),
        });
        runs.insert(id, run.clone());
        std::thread::spawn(move || pace(&run));
        id
    };
    let run = find(&st, id).expect("just inserted");
    let demos = lock(&run.demos);
    let variants: Vec<Value> = demos
        .iter()
        .map(|d| {
            json!({
                "label": d.label,
                "graph": d.graph(),
                "clients": d.spec.model.clients.iter().map(|c| json!({
                    "name": c.name,
                    "rate": c.rate,
                    "arrival": format!("{:?}", c.arrival).to_lowercase(),
                })).collect::<Vec<_>>(),
                "addressable": d.spec.model.addressable(),
                "services": d.spec.model.services.iter().map(|s| json!({
                    "name": s.name,
                    "workers": s.workers,
                    "instances": s.instances,
                    "autoscaled": d.spec.model.autoscalers.iter().any(|a| a.subject() == s.name),
                })).collect::<Vec<_>>(),
                "caches": d.spec.model.caches.iter().map(|c| json!({
                    "name": c.name,
                    "ttl": c.ttl.map(|t| t.0.to_string()),
                })).collect::<Vec<_>>(),
                "load_balancers": d.spec.model.load_balancers.iter().map(|l| json!({
                    "name": l.name,
                    "algorithm": l.algorithm,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let first = &demos[0];
    Json(json!({
        "id": id,
        "name": exp.name,
        "description": exp.description,
        "duration_s": first.spec.opts.duration.as_secs_f64(),
        "warmup_s": first.spec.opts.warmup.as_secs_f64(),
        "interval_s": first.spec.opts.timeseries.map_or(0.0, SimTime::as_secs_f64),
        "points": point_labels(&exp),
        "variants": variants,
    }))
    .into_response()
}

fn find(st: &AppState, id: u64) -> Option<Arc<Run>> {
    lock(&st.runs).get(&id).cloned()
}

/// The run's thread: advances every demo to the same simulated time, paced to the clock.
fn pace(run: &Run) {
    let mut last = Instant::now();
    // Simulated nanoseconds per step when running as fast as it goes, tuned to ~30 ms.
    let mut chunk: u64 = 10_000_000;
    while !run.stop.load(Ordering::Relaxed) {
        let (speed, paused) = *lock(&run.ctl);
        let elapsed = last.elapsed().min(Duration::from_millis(250));
        last = Instant::now();
        if paused {
            std::thread::sleep(Duration::from_millis(30));
            continue;
        }
        let started = Instant::now();
        {
            let mut demos = lock(&run.demos);
            if demos.iter().all(Demo::done) {
                drop(demos);
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let now = demos.iter().map(Demo::now).min().unwrap_or(SimTime::ZERO);
            let target = if speed > 0.0 {
                now + SimTime((elapsed.as_nanos() as f64 * speed) as u64)
            } else {
                now + SimTime(chunk)
            };
            for d in demos.iter_mut() {
                if let Err(e) = d.step_to(target) {
                    eprintln!("dssim serve: run failed: {e}");
                    run.stop.store(true, Ordering::Relaxed);
                }
            }
        }
        run.tick.send_modify(|n| *n += 1);
        let took = started.elapsed();
        if speed > 0.0 {
            std::thread::sleep(Duration::from_millis(15).saturating_sub(took / 2));
        } else {
            // Aim at ~30 ms of work per step, then let the page's requests in.
            let ms = took.as_secs_f64() * 1e3;
            if ms < 20.0 {
                chunk = chunk.saturating_mul(2).min(60_000_000_000);
            } else if ms > 45.0 {
                chunk = (chunk / 2).max(1_000_000);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

async fn delete_run(State(st): State<Arc<AppState>>, UrlPath(id): UrlPath<u64>) -> Response {
    match lock(&st.runs).remove(&id) {
        Some(r) => {
            r.stop.store(true, Ordering::Relaxed);
            Json(json!({ "stopped": id })).into_response()
        }
        None => fail(StatusCode::NOT_FOUND, "no such run"),
    }
}

#[derive(Deserialize)]
struct Control {
    speed: Option<f64>,
    paused: Option<bool>,
}

async fn control(
    State(st): State<Arc<AppState>>,
    UrlPath(id): UrlPath<u64>,
    Json(c): Json<Control>,
) -> Response {
    let Some(run) = find(&st, id) else {
        return fail(StatusCode::NOT_FOUND, "no such run");
    };
    let mut ctl = lock(&run.ctl);
    if let Some(s) = c.speed {
        if !(s.is_finite() && (0.0..=1e6).contains(&s)) {
            return fail(
                StatusCode::BAD_REQUEST,
                "speed is 0 (as fast as it goes) .. 1e6",
            );
        }
        ctl.0 = s;
    }
    if let Some(p) = c.paused {
        ctl.1 = p;
    }
    Json(json!({ "speed": ctl.0, "paused": ctl.1 })).into_response()
}

async fn act(
    State(st): State<Arc<AppState>>,
    UrlPath(id): UrlPath<u64>,
    Json(a): Json<Action>,
) -> Response {
    let Some(run) = find(&st, id) else {
        return fail(StatusCode::NOT_FOUND, "no such run");
    };
    // Rebuilding re-runs the world up to now: off the async threads.
    let res = tokio::task::spawn_blocking(move || {
        let mut demos = lock(&run.demos);
        let mut at = Vec::new();
        for d in demos.iter_mut() {
            at.push(d.act(a.clone())?);
        }
        drop(demos);
        run.tick.send_modify(|n| *n += 1);
        Ok::<_, String>(at)
    })
    .await;
    match res {
        Ok(Ok(at)) => {
            Json(json!({ "at_s": at.iter().map(|t| t.as_secs_f64()).collect::<Vec<_>>() }))
                .into_response()
        }
        Ok(Err(e)) => fail(StatusCode::BAD_REQUEST, e),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
struct Variant {
    #[serde(default)]
    variant: usize,
}

async fn export(
    State(st): State<Arc<AppState>>,
    UrlPath(id): UrlPath<u64>,
    Query(v): Query<Variant>,
) -> Response {
    let Some(run) = find(&st, id) else {
        return fail(StatusCode::NOT_FOUND, "no such run");
    };
    let demos = lock(&run.demos);
    let Some(d) = demos.get(v.variant) else {
        return fail(StatusCode::NOT_FOUND, "no such variant");
    };
    match d.export() {
        Ok(t) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], t).into_response(),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn result(
    State(st): State<Arc<AppState>>,
    UrlPath(id): UrlPath<u64>,
    Query(v): Query<Variant>,
) -> Response {
    let Some(run) = find(&st, id) else {
        return fail(StatusCode::NOT_FOUND, "no such run");
    };
    let demos = lock(&run.demos);
    match demos.get(v.variant).and_then(Demo::result) {
        Some(t) => ([(header::CONTENT_TYPE, "text/csv")], t.to_string()).into_response(),
        None => fail(StatusCode::CONFLICT, "the run has not ended yet"),
    }
}

/// What one page has seen of one demo.
#[derive(Default)]
struct Seen {
    rows: usize,
    generation: u64,
    at: SimTime,
    areas: Vec<(f64, f64)>,
}

fn num(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 1e4).round() / 1e4)
    } else {
        Value::Null
    }
}

fn opt(x: Option<f64>) -> Value {
    x.map_or(Value::Null, num)
}

/// One frame: new time-series rows, each node's state over the frame, results.
fn frame(run: &Run, seen: &mut Vec<Seen>) -> Value {
    let demos = lock(&run.demos);
    let (speed, paused) = *lock(&run.ctl);
    seen.resize_with(demos.len(), Seen::default);
    let mut variants = Vec::new();
    for (d, s) in demos.iter().zip(seen.iter_mut()) {
        let reset = s.generation != d.generation;
        if reset {
            s.generation = d.generation;
            s.rows = 0;
        }
        let mut rows = Vec::new();
        let mut nodes = Vec::new();
        let series = d.series();
        for r in series.iter().skip(s.rows) {
            rows.push(json!([
                num(r.t_s),
                num(r.rps),
                num(r.arrivals_rps),
                opt(r.p99_ms),
                r.errors,
                r.shed,
                num(r.instances),
                num(r.queue_len),
                num(r.in_flight),
                opt(r.utilization),
                opt(r.cache_hit_ratio),
                opt(r.repl_lag_ms),
            ]));
        }
        s.rows = series.len();
        if let Some(w) = d.world() {
            let now = w.now();
            let dt = now.0.saturating_sub(s.at.0) as f64;
            let g = d.graph();
            s.areas.resize(g.nodes.len(), (0.0, 0.0));
            for (n, prev) in g.nodes.iter().zip(s.areas.iter_mut()) {
                let Some(p) = w.probe(&n.name) else {
                    nodes.push(json!([1, 0, 0, 0, 1, 0]));
                    continue;
                };
                let workers = f64::from(p.workers.max(1));
                let fresh = dt <= 0.0 || p.busy_area < prev.0 || p.queue_area < prev.1 || reset;
                let (busy, queue) = if fresh {
                    (p.busy, p.queue)
                } else {
                    ((p.busy_area - prev.0) / dt, (p.queue_area - prev.1) / dt)
                };
                *prev = (p.busy_area, p.queue_area);
                let util = if n.kind == "service" {
                    busy / workers
                } else {
                    busy
                };
                nodes.push(json!([
                    u8::from(p.alive),
                    num(util),
                    num(queue),
                    p.requests,
                    u8::from(p.on),
                    p.workers
                ]));
            }
            s.at = now;
        }
        variants.push(json!({
            "reset": reset,
            "graph": if reset { json!(d.graph()) } else { Value::Null },
            "rows": rows,
            "nodes": nodes,
            "now_s": d.now().as_secs_f64(),
            "done": d.done(),
            "result": d.result(),
            "actions": d.actions().iter().map(|t| json!({
                "at_s": t.at.as_secs_f64(), "action": t.action,
            })).collect::<Vec<_>>(),
        }));
    }
    json!({ "speed": speed, "paused": paused, "variants": variants })
}

async fn events(State(st): State<Arc<AppState>>, UrlPath(id): UrlPath<u64>) -> Response {
    let Some(run) = find(&st, id) else {
        return fail(StatusCode::NOT_FOUND, "no such run");
    };
    *lock(&run.idle_since) = None;
    let rx = run.tick.subscribe();
    struct Feed {
        run: Arc<Run>,
        rx: tokio::sync::watch::Receiver<u64>,
        seen: Vec<Seen>,
        first: bool,
    }
    impl Drop for Feed {
        fn drop(&mut self) {
            if self.rx.has_changed().is_ok() && self.run.tick.receiver_count() <= 1 {
                *lock(&self.run.idle_since) = Some(Instant::now());
            }
        }
    }
    let feed = Feed {
        run,
        rx,
        seen: Vec::new(),
        first: true,
    };
    let stream = futures_util::stream::unfold(feed, |mut f| async move {
        if f.run.stop.load(Ordering::Relaxed) {
            return None;
        }
        if !f.first {
            tokio::time::sleep(Duration::from_millis(1000 / MAX_FPS)).await;
            // A frame when something moved, or a heartbeat every second.
            let _ = tokio::time::timeout(Duration::from_secs(1), f.rx.changed()).await;
        }
        f.first = false;
        f.rx.borrow_and_update();
        let run = f.run.clone();
        let mut seen = std::mem::take(&mut f.seen);
        let (data, seen) = tokio::task::spawn_blocking(move || {
            let v = frame(&run, &mut seen);
            (v.to_string(), seen)
        })
        .await
        .ok()?;
        f.seen = seen;
        Some((
            Ok::<_, std::convert::Infallible>(Event::default().data(data)),
            f,
        ))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[doc(hidden)]
/// Test hook: the router on an address, without a socket.
pub fn test_router(file: Option<PathBuf>, port: u16) -> Router {
    let opts = Options {
        file,
        host: IpAddr::from([127, 0, 0, 1]),
        port,
    };
    app(&opts, SocketAddr::new(opts.host, port))
}
