//! `dssim serve`: the stepping API leaves runs byte-identical; a demo's actions exported as
//! an experiment reproduce the demo with `dssim run`; bad input gets the CLI's error; the
//! server refuses cross-origin requests, caps uploads and live runs. (The page itself is
//! driven in a real browser by crates/dssim-serve/browser-test.mjs, run by .ci/run.)

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use dssim_engine::SimTime;
use dssim_lab::output::{fmt_f64, runs_line};
use dssim_lab::Experiment;
use dssim_serve::demo::{load_text, Action, Demo};

use crate::support::{bin, read_csv, run_ok, tmp_dir, write};

fn experiment(name: &str) -> Experiment {
    Experiment::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("experiments")
            .join(name),
    )
    .expect("shipped experiment loads")
}

fn series_text(rows: &[dssim_components::stats::SeriesRow]) -> String {
    rows.iter().map(|r| format!("{r:?}\n")).collect()
}

/// A world stepped in uneven increments across the warm-up, then run, reports exactly
/// what an unstepped run reports: runs.csv row, time series, component rows.
#[test]
fn stepping_a_world_leaves_its_run_identical() {
    for (file, run) in [
        ("health-checks.toml", 3),
        ("cap.toml", 2),
        ("cache-stampede.toml", 0),
    ] {
        let exp = experiment(file);
        let spec = exp.spec(run).expect("spec");
        let whole = dssim_lab::run_one(&spec).expect("run");
        let mut world = spec.model.build(&spec.opts).expect("build");
        let step = SimTime::from_millis(1_370);
        let mut t = SimTime::ZERO;
        let mut stepped_rows = 0;
        while t < spec.opts.duration {
            t += step;
            world.step_to(t);
            assert!(world.series().len() >= stepped_rows, "rows only grow");
            stepped_rows = world.series().len();
        }
        assert_eq!(
            world.now(),
            spec.opts.duration,
            "{file}: stepping stops at the end"
        );
        let stepped = world.run().expect("run");
        assert_eq!(
            runs_line(&spec, &stepped),
            runs_line(&spec, &whole),
            "{file}: runs.csv"
        );
        assert_eq!(
            series_text(&stepped.series),
            series_text(&whole.series),
            "{file}: series"
        );
        assert_eq!(
            format!("{:?}", stepped.components),
            format!("{:?}", whole.components),
            "{file}: components"
        );
    }
}

fn act(d: &mut Demo, t_ms: u64, a: Action) -> SimTime {
    d.step_to(SimTime::from_millis(t_ms)).expect("step");
    d.act(a).expect("action applies")
}

fn finish(d: &mut Demo) -> String {
    while !d.done() {
        let t = d.now() + SimTime::from_secs(3);
        d.step_to(t).expect("step");
    }
    d.result().expect("result").to_string()
}

fn scripted(kill_ms: u64) -> Demo {
    // Health checks every 5 s, 3 failures to eject: a kill shows for 10-15 s.
    let mut d = Demo::new(&experiment("health-checks.toml"), 5).expect("demo");
    act(
        &mut d,
        kill_ms,
        Action::Kill {
            target: "app.1".into(),
        },
    );
    act(
        &mut d,
        12_000,
        Action::Rate {
            client: "users".into(),
            rate: 2600.0,
        },
    );
    act(
        &mut d,
        14_000,
        Action::Cut {
            a: vec!["lb".into()],
            b: vec!["app.0".into()],
        },
    );
    act(&mut d, 15_500, Action::Heal);
    act(
        &mut d,
        25_250,
        Action::Recover {
            target: "app.1".into(),
        },
    );
    d
}

/// Kill, load, cut, heal and recover at set simulated times; the export run by the CLI
/// gives the demo's runs.csv byte for byte and its time series row for row. The same
/// actions at the same times give the same results; another time gives others.
/// Runs an exported demo with `dssim run`: its runs.csv must equal the demo's `result` and
/// its timeseries.csv hold `rows` rows, which it returns.
fn run_export(tag: &str, text: &str, result: &str, rows: usize) -> Vec<crate::support::Row> {
    let dir = tmp_dir(tag);
    let file = write(&dir, "demo.toml", text);
    run_ok(&file, &dir.join("out"), &["--jobs", "1"]);
    let cli = std::fs::read_to_string(dir.join("out/runs.csv")).expect("runs.csv");
    assert_eq!(cli, result, "runs.csv of the export = the demo's");
    let ts = read_csv(&dir.join("out/timeseries.csv"));
    assert_eq!(ts.len(), rows);
    ts
}

#[test]
fn a_demo_exported_reproduces_with_dssim_run() {
    let mut d = scripted(8_000);
    let actions: Vec<(SimTime, Action)> = d
        .actions()
        .iter()
        .map(|t| (t.at, t.action.clone()))
        .collect();
    assert_eq!(
        actions[0].0,
        SimTime::from_millis(8_000),
        "an action lands on the next ms"
    );
    let result = finish(&mut d);
    let rows = d.series().to_vec();
    let errors_after: u64 = rows
        .iter()
        .filter(|r| r.t_s >= 8.0 && r.t_s < 20.0)
        .map(|r| r.errors)
        .sum();
    let errors_before: u64 = rows.iter().filter(|r| r.t_s < 8.0).map(|r| r.errors).sum();
    assert_eq!(errors_before, 0);
    assert!(
        errors_after > 1000,
        "the kill shows as errors: {errors_after}"
    );

    let ts = run_export(
        "serve-export",
        &d.export().expect("export"),
        &result,
        rows.len(),
    );
    for (csv, r) in ts.iter().zip(&rows) {
        assert_eq!(csv["errors"], r.errors.to_string());
        assert_eq!(csv["rps"], fmt_f64(r.rps));
    }

    let mut again = scripted(8_000);
    assert_eq!(
        finish(&mut again),
        result,
        "same actions, same times: same results"
    );
    let mut later = scripted(9_000);
    assert_ne!(
        finish(&mut later),
        result,
        "a kill a second later changes the run"
    );
}

/// A load balancer, a service with an app cache and a store behind it: every setting the
/// page's controls change has something to act on.
const SETTINGS: &str = r#"
name = "settings"
duration = "20s"
warmup = "2s"
seed = 3

[output]
timeseries = "1s"

[model]
[[model.clients]]
name = "users"
target = "lb"
rate = 1500
keys = 2000
popularity = "zipf(0.9)"
timeout = "1s"

[[model.load_balancers]]
name = "lb"
backends = "app"

[[model.services]]
name = "app"
instances = 2
workers = 2
service_time = "exp(2ms)"
cache = "cache"

[[model.caches]]
name = "cache"
ttl = "100ms"
origin = "store"

[[model.services]]
name = "store"
instances = 1
workers = 64
service_time = "exp(2ms)"
"#;

fn set(target: &str, json: &str) -> Action {
    Action::Set {
        target: target.into(),
        set: serde_json::from_str(json).expect("settings"),
    }
}

fn settings_demo(workers_at_ms: u64) -> Demo {
    let exp =
        load_text(&tmp_dir("serve-settings"), "settings.toml", SETTINGS.into()).expect("loads");
    let mut d = Demo::new(&exp, 0).expect("demo");
    act(&mut d, workers_at_ms, set("app", r#"{"workers": 4}"#));
    act(&mut d, 7_000, set("app", r#"{"instances": 3}"#));
    act(&mut d, 9_000, set("cache", r#"{"ttl": "5s"}"#));
    act(
        &mut d,
        12_000,
        set("lb", r#"{"algorithm": "least_connections"}"#),
    );
    act(
        &mut d,
        15_000,
        set("app", r#"{"workers": 1, "instances": 2}"#),
    );
    d
}

/// The workers, instances, TTL and algorithm controls become `[[changes]]` entries at the
/// simulated times they were used; each shows in the live series, and `dssim run` on the
/// export gives the demo's runs.csv byte for byte and its time series row for row.
#[test]
fn changed_settings_export_as_changes_and_reproduce() {
    let mut d = settings_demo(4_000);
    let result = finish(&mut d);
    let rows = d.series().to_vec();
    let mean = |from: f64, to: f64, f: &dyn Fn(&dssim_components::stats::SeriesRow) -> f64| {
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| r.t_s >= from && r.t_s < to)
            .map(f)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let q_before = mean(2.0, 4.0, &|r| r.queue_len);
    let q_after = mean(4.0, 7.0, &|r| r.queue_len);
    assert!(
        q_after * 2.0 < q_before,
        "workers x2: queue {q_before} -> {q_after}"
    );
    // app's instances and store's one.
    assert_eq!(mean(2.0, 7.0, &|r| r.instances), 3.0);
    assert_eq!(mean(8.0, 15.0, &|r| r.instances), 4.0);
    assert_eq!(mean(16.0, 20.0, &|r| r.instances), 3.0);
    let hit = |from, to| mean(from, to, &|r| r.cache_hit_ratio.unwrap_or(0.0));
    assert!(hit(10.0, 15.0) > hit(2.0, 9.0) + 0.1, "ttl 100ms -> 5s");

    let text = d.export().expect("export");
    assert_eq!(text.matches("[[model.changes]]").count(), 5, "{text}");
    let ts = run_export("serve-settings-export", &text, &result, rows.len());
    for (csv, r) in ts.iter().zip(&rows) {
        assert_eq!(csv["instances"], fmt_f64(r.instances));
        assert_eq!(csv["queue_len"], fmt_f64(r.queue_len));
    }
    assert_eq!(
        finish(&mut settings_demo(4_000)),
        result,
        "same actions, same results"
    );
    assert_ne!(
        finish(&mut settings_demo(5_000)),
        result,
        "later, other results"
    );
}

/// Actions the model cannot take are refused with a reason, and change nothing.
#[test]
fn a_demo_refuses_what_it_cannot_do() {
    let mut d = Demo::new(&experiment("health-checks.toml"), 0).expect("demo");
    d.step_to(SimTime::from_secs(2)).expect("step");
    let e = d
        .act(Action::Kill {
            target: "nope".into(),
        })
        .unwrap_err();
    assert!(e.contains("no component is named \"nope\""), "{e}");
    let e = d
        .act(Action::Recover {
            target: "app.0".into(),
        })
        .unwrap_err();
    assert!(e.contains("not killed"), "{e}");
    let e = d.act(Action::Heal).unwrap_err();
    assert!(e.contains("no cut"), "{e}");
    let e = d
        .act(Action::Rate {
            client: "users".into(),
            rate: -1.0,
        })
        .unwrap_err();
    assert!(e.contains("rate must be"), "{e}");
    d.act(Action::Kill {
        target: "app.0".into(),
    })
    .expect("kill");
    let e = d
        .act(Action::Kill {
            target: "app.0".into(),
        })
        .unwrap_err();
    assert!(e.contains("already down"), "{e}");
    let e = d.act(set("nope", r#"{"workers": 2}"#)).unwrap_err();
    assert!(e.contains("not a service, cache or load balancer"), "{e}");
    let e = d.act(set("app", r#"{"ttl": "5s"}"#)).unwrap_err();
    assert!(e.contains("setting of caches"), "{e}");
    let e = d.act(set("lb", r#"{}"#)).unwrap_err();
    assert!(e.contains("sets nothing"), "{e}");
    assert_eq!(d.actions().len(), 1);
}

/// A malformed upload gets exactly the CLI's `file:line:column: message`.
#[test]
fn a_bad_upload_gets_the_cli_error() {
    let dir = tmp_dir("serve-bad");
    let text = "duration = \"5s\"\nwarmup = 5\n[model]\n";
    let file = write(&dir, "bad.toml", text);
    let e = load_text(&dir, "bad.toml", text.to_string())
        .unwrap_err()
        .to_string();
    let o = Command::new(bin())
        .args(["check", file.to_str().expect("utf-8")])
        .output()
        .expect("dssim check");
    assert_eq!(o.status.code(), Some(2));
    let cli = String::from_utf8_lossy(&o.stderr);
    let head = e.split(" (").next().expect("message");
    assert!(head.contains("bad.toml:2:10: "), "{e}");
    assert!(
        cli.contains(head),
        "the CLI says the same:\n{cli}\npage: {e}"
    );
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server() -> Server {
    let mut child = Command::new(bin())
        .args(["serve", "--port", "0"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dssim serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the URL line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("a URL")
        .to_string();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "binds localhost by default: {line}"
    );
    Server { child, addr }
}

/// One HTTP/1.1 request; (status, body).
fn http(s: &Server, method: &str, path: &str, extra: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut c = TcpStream::connect(&s.addr).expect("connect");
    let host = extra
        .iter()
        .find(|(k, _)| *k == "Host")
        .map_or(s.addr.as_str(), |(_, v)| v);
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in extra.iter().filter(|(k, _)| *k != "Host") {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    c.write_all(req.as_bytes()).expect("send");
    let _ = c.write_all(body.as_bytes());
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).to_string();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (status, body)
}

fn upload(name: &str) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("experiments")
            .join(name),
    )
    .expect("read");
    serde_json::json!({ "name": name, "text": text }).to_string()
}

#[test]
fn the_server_serves_the_page_and_guards_itself() {
    let s = server();
    let (code, page) = http(&s, "GET", "/", &[], "");
    assert_eq!(code, 200);
    assert!(page.contains("<script src=\"/app.js\">"));
    let (code, js) = http(&s, "GET", "/app.js", &[], "");
    assert_eq!(code, 200);
    assert!(
        !js.replace("http://www.w3.org/2000/svg", "")
            .contains("http://")
            && !js.contains("https://"),
        "nothing fetched from outside"
    );
    let (code, list) = http(&s, "GET", "/api/experiments", &[], "");
    assert_eq!(code, 200);
    assert!(list.contains("health-checks.toml"));
    let (code, _) = http(&s, "GET", "/api/experiments/..%2FCargo.toml", &[], "");
    assert_eq!(code, 404, "only listed files are read");

    // Cross-origin and foreign hosts are refused.
    let (code, body) = http(
        &s,
        "POST",
        "/api/check",
        &[("Origin", "http://evil.example")],
        &upload("mm1.toml"),
    );
    assert_eq!(code, 403, "{body}");
    let (code, _) = http(&s, "GET", "/", &[("Host", "evil.example")], "");
    assert_eq!(code, 403, "DNS rebinding: another host name is refused");
    let own = format!("http://{}", s.addr);
    let (code, body) = http(
        &s,
        "POST",
        "/api/check",
        &[("Origin", own.as_str())],
        &upload("mm1.toml"),
    );
    assert_eq!(code, 200, "{body}");

    // Malformed input: the CLI's error, never a crash.
    let bad = serde_json::json!({ "name": "x.toml", "text": "duration = 5\n" }).to_string();
    let (code, body) = http(&s, "POST", "/api/check", &[], &bad);
    assert_eq!(code, 400);
    assert!(
        body.contains("x.toml:1:12: a duration needs a unit"),
        "{body}"
    );
    assert!(
        body.contains("\"line\":1") && body.contains("\"column\":12"),
        "{body}"
    );
    let (code, _) = http(&s, "POST", "/api/check", &[], "{not json");
    assert!((400..500).contains(&code));
    let (code, _) = http(&s, "POST", "/api/runs", &[], "\u{0}\u{1}garbage");
    assert!((400..500).contains(&code));
    let huge = serde_json::json!({ "name": "x.toml", "text": "#".repeat(300_000) }).to_string();
    let (code, _) = http(&s, "POST", "/api/check", &[], &huge);
    assert_eq!(code, 413, "uploads are capped");

    // At most four live runs.
    for i in 0..4 {
        let (code, body) = http(&s, "POST", "/api/runs", &[], &upload("mm1.toml"));
        assert_eq!(code, 200, "run {i}: {body}");
    }
    let (code, body) = http(&s, "POST", "/api/runs", &[], &upload("mm1.toml"));
    assert_eq!(code, 429, "{body}");
    let (code, _) = http(&s, "DELETE", "/api/runs/1", &[], "");
    assert_eq!(code, 200);
    let (code, body) = http(&s, "POST", "/api/runs", &[], &upload("mm1.toml"));
    assert_eq!(code, 200, "a stopped run makes room: {body}");
    let (code, body) = http(
        &s,
        "POST",
        "/api/runs/2/action",
        &[],
        r#"{"kind":"kill","target":"nope"}"#,
    );
    assert_eq!(code, 400);
    assert!(body.contains("no component is named"), "{body}");
    let (code, _) = http(&s, "GET", "/", &[], "");
    assert_eq!(code, 200, "still serving");
}

/// Every shipped experiment exports (no actions) to a file that loads back to the same
/// resolved model, run options and seed.
#[test]
fn every_shipped_experiment_exports_and_loads_back() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("experiments")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert!(names.len() > 20);
    for path in names {
        let exp = Experiment::load(&path).expect("loads");
        let d = Demo::new(&exp, 0).expect("demo");
        let text = d.export().expect("export");
        let back = load_text(&dir, "exported.toml", text.clone())
            .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
        let spec = back.spec(0).expect("spec");
        assert_eq!(back.points(), 1);
        assert_eq!(spec.seed, d.spec.seed, "{}", path.display());
        assert_eq!(
            format!("{:?}", spec.model),
            format!("{:?}", d.spec.model),
            "{}",
            path.display()
        );
        assert_eq!(format!("{:?}", spec.opts), format!("{:?}", d.spec.opts));
    }
}
