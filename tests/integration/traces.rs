//! `[output] trace = N`: trace.json in the Chrome trace-event format. The spans must tell
//! the truth about each traced request (they nest, the phases add up to the visit, a
//! write's replication starts at its commit), tracing must not change any result, and bad
//! values are refused.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::support::{dssim, run_ok, tmp_dir, write};

/// One service behind a load balancer, with a database (async replicas) and network latency:
/// no timeouts, so every traced request's spans nest strictly.
const EXPERIMENT: &str = r#"
name = "traced"
duration = "3s"
warmup = "1s"
seed = 5
replications = 2

[output]
trace = 40

[model]
[[model.clients]]
name = "users"
target = "lb"
rate = 300
read_ratio = 0.5
keys = 50

[[model.load_balancers]]
name = "lb"
backends = "app"
algorithm = "round_robin"

[[model.services]]
name = "app"
instances = 2
workers = 1
service_time = "exp(2ms)"
database = "db"

[[model.databases]]
name = "db"
replicas = 2
read_time = "exp(1ms)"
write_time = "exp(2ms)"
replication = "async"
replication_delay = "exp(5ms)"
read_from = "replicas"

[model.network]
latency = "uniform(0.2ms, 0.6ms)"
"#;

/// A complete ("X") or async ("b"/"e") event, times in µs.
#[derive(Clone, Debug)]
struct Ev {
    ph: String,
    name: String,
    cat: String,
    ts: f64,
    dur: f64,
    args: Value,
    id: String,
}

/// (run, request): a traced request's track.
type Track = (u64, u64);

/// trace.json: the events of each track, and each track's name.
fn load(dir: &Path) -> (BTreeMap<Track, Vec<Ev>>, BTreeMap<Track, String>) {
    let text = std::fs::read_to_string(dir.join("trace.json")).expect("trace.json");
    let v: Value = serde_json::from_str(&text).expect("trace.json is valid JSON");
    let mut spans: BTreeMap<Track, Vec<Ev>> = BTreeMap::new();
    let mut threads = BTreeMap::new();
    for e in v["traceEvents"].as_array().expect("traceEvents") {
        let ph = e["ph"].as_str().unwrap_or("").to_string();
        let key = (
            e["pid"].as_u64().unwrap_or(0),
            e["tid"].as_u64().unwrap_or(0),
        );
        let name = e["name"].as_str().unwrap_or("").to_string();
        if ph == "M" {
            if name == "thread_name" {
                threads.insert(key, e["args"]["name"].as_str().unwrap_or("").to_string());
            }
            continue;
        }
        spans.entry(key).or_default().push(Ev {
            ph,
            name,
            cat: e["cat"].as_str().unwrap_or("").to_string(),
            ts: e["ts"].as_f64().expect("ts"),
            dur: e["dur"].as_f64().unwrap_or(0.0),
            args: e["args"].clone(),
            id: e["id"].as_str().unwrap_or("").to_string(),
        });
    }
    (spans, threads)
}

const EPS: f64 = 1e-6; // µs: the file carries whole nanoseconds

/// The complete events of one request nest: in file order, each starts inside the
/// innermost open one and ends no later than it.
fn assert_nested(key: Track, evs: &[Ev]) {
    let mut stack: Vec<&Ev> = Vec::new();
    for e in evs.iter().filter(|e| e.ph == "X") {
        while let Some(top) = stack.last() {
            if e.ts >= top.ts + top.dur - EPS && !(e.dur == 0.0 && e.ts <= top.ts + top.dur) {
                stack.pop();
            } else {
                break;
            }
        }
        let is_visit = |e: &Ev| e.args.get("status").is_some();
        if let Some(top) = stack.last() {
            assert!(
                e.ts >= top.ts - EPS && e.ts + e.dur <= top.ts + top.dur + EPS,
                "{key:?}: {} [{}, +{}] is not inside {} [{}, +{}]",
                e.name,
                e.ts,
                e.dur,
                top.name,
                top.ts,
                top.dur
            );
            // A phase sits directly in its own component's visit; a visit in a phase of
            // its caller.
            if is_visit(e) {
                assert!(
                    !is_visit(top),
                    "{key:?}: visit {} directly in {}",
                    e.name,
                    top.name
                );
            } else {
                assert!(
                    is_visit(top) && e.args["in"] == top.name.as_str(),
                    "{key:?}: phase {} of {} directly in {}",
                    e.name,
                    e.args["in"],
                    top.name
                );
            }
        } else {
            assert!(
                e.cat == "client" && is_visit(e),
                "{key:?}: the outermost span is the client's visit, not {}",
                e.name
            );
        }
        stack.push(e);
    }
}

#[test]
fn traced_requests_nest_and_their_phases_add_up() {
    let dir = tmp_dir("trace");
    let file = write(&dir, "t.toml", EXPERIMENT);
    let out = dir.join("out");
    run_ok(&file, &out, &["--jobs", "2"]);
    let (spans, threads) = load(&out);
    // 40 traced requests in each of the two runs, named after what they do.
    for run in 0..2 {
        let n = threads.keys().filter(|k| k.0 == run).count();
        assert_eq!(n, 40, "run {run} traces 40 requests");
    }
    assert!(threads
        .values()
        .all(|t| t.contains(" key ") && t.ends_with("from users")));
    let mut writes = 0;
    let mut replicated = 0;
    for (key, evs) in &spans {
        assert_nested(*key, evs);
        let visit = |cat: &str| {
            let v: Vec<&Ev> = evs
                .iter()
                .filter(|e| e.ph == "X" && e.cat == cat && e.args.get("status").is_some())
                .collect();
            assert_eq!(v.len(), 1, "{key:?}: one {cat} visit, found {}", v.len());
            v[0]
        };
        let client = visit("client");
        assert_eq!(client.args["status"], "ok", "{key:?}");
        // Traced requests are sent in the measured window (after the 1 s warm-up).
        assert!(client.ts >= 1e6, "{key:?}: sent at {} µs", client.ts);
        let lb = visit("load_balancer");
        let app = visit("service");
        let db = visit("database");
        assert!(client.dur > lb.dur && lb.dur >= app.dur && app.dur > db.dur);
        // The instance's phases tile its visit: queue (if any) + cpu + data.
        let phases: Vec<&Ev> = evs
            .iter()
            .filter(|e| e.ph == "X" && e.args["in"] == app.name.as_str())
            .collect();
        let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        assert!(
            names == ["cpu", "data"] || names == ["queue", "cpu", "data"],
            "{key:?}: phases {names:?}"
        );
        let sum: f64 = phases.iter().map(|p| p.dur).sum();
        assert!(
            (sum - app.dur).abs() < 1e-3,
            "{key:?}: {sum} vs {}",
            app.dur
        );
        // Writes go to the primary; each replica applies them after the commit.
        let write = threads[key].contains(" write ");
        let repl: Vec<&Ev> = evs.iter().filter(|e| e.cat == "replication").collect();
        if write {
            writes += 1;
            assert!(
                db.name.ends_with("primary"),
                "{key:?}: write at {}",
                db.name
            );
            let begins: Vec<&&Ev> = repl.iter().filter(|e| e.ph == "b").collect();
            if begins.len() == 2 {
                replicated += 1;
            }
            for b in begins {
                // Async: the primary answers at the commit, when the change leaves.
                assert!(
                    (b.ts - (db.ts + db.dur)).abs() < 1e-3,
                    "{key:?}: replication starts at {} but the commit is at {}",
                    b.ts,
                    db.ts + db.dur
                );
                let e = repl
                    .iter()
                    .find(|e| e.ph == "e" && e.id == b.id)
                    .expect("every replication span ends");
                assert!(e.ts > b.ts, "{key:?}: the lag is positive");
            }
        } else {
            assert!(repl.is_empty(), "{key:?}: a read replicates nothing");
            assert!(db.name.contains("replica"), "{key:?}: read at {}", db.name);
        }
    }
    assert!(
        writes > 10 && replicated > 10,
        "{writes} writes, {replicated} replicated"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `trace_sample = "slowest"` keeps exactly the slowest requests: the same ones, with the
/// same spans, as tracing every request and picking the slowest afterwards.
#[test]
fn slowest_sampling_keeps_the_tail() {
    let dir = tmp_dir("trace-slowest");
    let file = write(&dir, "t.toml", EXPERIMENT);
    let (all, tail) = (dir.join("all"), dir.join("tail"));
    // About 600 requests per run: 10,000 traces them all.
    run_ok(&file, &all, &["--set", "output.trace=10000"]);
    run_ok(
        &file,
        &tail,
        &[
            "--set",
            "output.trace=10",
            "--set",
            "output.trace_sample=slowest",
        ],
    );
    let (every, names) = load(&all);
    let (slow, slow_names) = load(&tail);
    let client_ms = |evs: &[Ev]| {
        evs.iter()
            .find(|e| e.cat == "client" && e.args.get("status").is_some())
            .map(|e| e.dur)
            .expect("client visit")
    };
    for run in 0..2 {
        let mut by_time: Vec<((u64, u64), f64)> = every
            .iter()
            .filter(|(k, _)| k.0 == run)
            .map(|(k, e)| (*k, client_ms(e)))
            .collect();
        assert!(by_time.len() > 500, "run {run}: {} traced", by_time.len());
        // Slowest first; equal times: the earlier request first.
        by_time.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let want: Vec<(u64, u64)> = by_time[..10].iter().map(|x| x.0).collect();
        let mut got: Vec<(u64, u64)> = slow.keys().filter(|k| k.0 == run).copied().collect();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        got.sort();
        assert_eq!(got, want_sorted, "run {run}: the 10 slowest");
        for k in &got {
            assert_eq!(slow_names[k], names[k]);
            let (a, b) = (&slow[k], &every[k]);
            assert_eq!(a.len(), b.len(), "{k:?}: same spans");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tracing_changes_no_result() {
    let dir = tmp_dir("trace-same");
    let file = write(&dir, "t.toml", EXPERIMENT);
    let (a, b) = (dir.join("a"), dir.join("b"));
    run_ok(&file, &a, &["--jobs", "1"]);
    run_ok(&file, &b, &["--jobs", "2", "--set", "output.trace=0"]);
    let c = dir.join("c");
    run_ok(&file, &c, &["--set", "output.trace_sample=slowest"]);
    assert!(a.join("trace.json").exists() && !b.join("trace.json").exists());
    for f in ["runs.csv", "latency.csv", "components.csv"] {
        let x = std::fs::read(a.join(f)).expect("a");
        let y = std::fs::read(b.join(f)).expect("b");
        let z = std::fs::read(c.join(f)).expect("c");
        assert!(x == y && y == z, "{f} changes when tracing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Timeouts and retries: the client's visit holds each attempt and the backoff between;
/// the late answer to an abandoned attempt still closes its spans.
#[test]
fn retries_show_as_attempts_and_backoffs() {
    let dir = tmp_dir("trace-retry");
    let file = write(
        &dir,
        "r.toml",
        r#"
name = "retry"
duration = "4s"
warmup = "200ms"
seed = 3
[output]
trace = 500
[model]
[[model.clients]]
name = "users"
target = "app"
rate = 150
timeout = "8ms"
retries = { max = 2, backoff = "1ms" }
[[model.services]]
name = "app"
workers = 1
service_time = "exp(2ms)"
"#,
    );
    let out = dir.join("out");
    run_ok(&file, &out, &[]);
    let (spans, _) = load(&out);
    let (mut retried, mut ok) = (0, 0);
    for (key, evs) in &spans {
        let client = evs
            .iter()
            .find(|e| e.cat == "client" && e.args.get("status").is_some())
            .expect("client visit");
        let attempts = evs.iter().filter(|e| e.name == "attempt").count();
        let backoffs = evs.iter().filter(|e| e.name == "backoff").count();
        assert!((1..=3).contains(&attempts), "{key:?}");
        assert_eq!(backoffs, attempts - 1, "{key:?}");
        if attempts > 1 {
            retried += 1;
        }
        let status = client.args["status"].as_str().unwrap_or("");
        assert!(
            status == "ok" || status == "timeout" || status == "unfinished",
            "{key:?}: {status}"
        );
        if status == "ok" {
            ok += 1;
            // The attempt that succeeded ends with the client's visit.
            let last = evs.iter().rfind(|e| e.name == "attempt").unwrap();
            assert!((last.ts + last.dur - (client.ts + client.dur)).abs() < 1e-3);
        }
    }
    // About 6% of first attempts time out at this load (M/M/1: e^-(μ-λ)t = e^-2.8).
    assert!(
        spans.len() == 500 && retried > 10 && ok > 450,
        "{retried} retried, {ok} ok"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn too_many_traced_requests_are_refused() {
    let dir = tmp_dir("trace-bad");
    let file = write(
        &dir,
        "t.toml",
        &EXPERIMENT.replace("trace = 40", "trace = 20000"),
    );
    let o = dssim(&["check", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("output.trace") && err.contains("10000"),
        "{err}"
    );
    let o = dssim(&[
        "check",
        write(&dir, "ok.toml", EXPERIMENT).to_str().unwrap(),
        "--set",
        "output.trace=100000",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
