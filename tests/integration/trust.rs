//! Output folders no one can corrupt, names that stay names, limits that hold (issue 11):
//! the folder lock, refusal of another plan's folder, resume that checks every file,
//! identifiers, CSV quoting, input caps, limits during a run, deep request paths, huge
//! sweeps and the small input checks.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dssim_components::model::RunCap;
use dssim_components::{RunError, RunOptions};
use dssim_engine::SimTime;

use crate::support::{
    dssim, dssim_within, read_csv, reference_run, run_ok, snapshot, tmp_dir, write,
};

const SWEEP: &str = r#"
name = "trust"
duration = "2s"
replications = 2
[output]
timeseries = "500ms"
trace = 2
[model]
[[model.clients]]
name = "users"
target = "app"
rate = 200
[[model.services]]
name = "app"
workers = 2
service_time = "exp(5ms)"
[sweep]
"services.app.workers" = [1, 2]
"#;

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_second_writer_is_refused_at_once_naming_the_folder_and_the_holder() {
    let dir = tmp_dir("lock");
    let file = write(
        &dir,
        "slow.toml",
        "duration = \"600s\"\n[model]\n[[model.clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 20000\n\
         [[model.services]]\nname = \"app\"\nworkers = 4\nservice_time = \"exp(0.1ms)\"\n",
    );
    let folder = dir.join("out");
    let mut first = Command::new(crate::support::bin())
        .args([
            "run",
            file.to_str().unwrap(),
            "--out",
            folder.to_str().unwrap(),
            "--jobs",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dssim");
    let pid = first.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(folder.join("dssim.lock")).is_ok_and(|t| t.contains("pid")) {
        assert!(
            Instant::now() < deadline,
            "the first writer never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let t0 = Instant::now();
    let second = dssim(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        folder.to_str().unwrap(),
        "--seed",
        "9",
    ]);
    let waited = t0.elapsed();
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(second.status.code(), Some(1), "{}", err(&second));
    let e = err(&second);
    assert!(
        e.contains(folder.to_str().unwrap()) && e.contains(&format!("pid {pid}")),
        "{e}"
    );
    assert!(
        waited < Duration::from_secs(20),
        "refused only after {waited:?}"
    );
    // Once the holder is gone, the folder is free again (the OS released the lock).
    let again = dssim(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        folder.to_str().unwrap(),
        "--set",
        "duration=1s",
        "--overwrite",
    ]);
    assert!(again.status.success(), "{}", err(&again));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_folder_of_another_plan_is_refused_unless_overwrite_or_a_matching_resume() {
    let dir = tmp_dir("another-plan");
    let file = write(&dir, "s.toml", SWEEP);
    let folder = dir.join("out");
    run_ok(&file, &folder, &[]);
    let before = snapshot(&folder);
    let f = file.to_str().unwrap();
    let o = folder.to_str().unwrap();
    for extra in [
        &["--seed", "2"][..],
        &["--set", "services.app.service_time=\"exp(6ms)\""],
        &["--seed", "2", "--resume"],
    ] {
        let mut args = vec!["run", f, "--out", o];
        args.extend_from_slice(extra);
        let r = dssim(&args);
        assert_eq!(r.status.code(), Some(1), "{extra:?}: {}", err(&r));
        assert!(err(&r).contains("--overwrite"), "{}", err(&r));
        assert!(snapshot(&folder) == before, "{extra:?} touched the folder");
    }
    // The same plan again is fine; so is another with --overwrite.
    run_ok(&file, &folder, &[]);
    run_ok(&file, &folder, &["--seed", "2", "--overwrite"]);
    // A folder holding a runs.csv that dssim did not write is left alone.
    let foreign = dir.join("mine");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("runs.csv"), "my,data\n1,2\n").unwrap();
    let r = dssim(&["run", f, "--out", foreign.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1), "{}", err(&r));
    assert_eq!(
        std::fs::read_to_string(foreign.join("runs.csv")).unwrap(),
        "my,data\n1,2\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_checks_every_file_and_reruns_what_is_missing_or_torn() {
    let dir = tmp_dir("resume-verify");
    let (file, _, want) = reference_run(&dir, "s.toml", SWEEP, &["--jobs", "2"]);
    // A deleted file: every run again. A torn row (a field short) in the middle of
    // components.csv: that run again. A lost trace: every run again.
    for damage in ["latency.csv", "components.csv", "trace.json"] {
        let cut = dir.join(format!("cut-{damage}"));
        run_ok(&file, &cut, &["--jobs", "2"]);
        let path = cut.join(damage);
        if damage == "components.csv" {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut lines: Vec<&str> = text.lines().collect();
            let torn = lines[2].rsplit_once(',').unwrap().0.to_string();
            lines[2] = &torn;
            std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
        let said = run_ok(&file, &cut, &["--resume"]);
        assert!(
            !said.contains(" 0 runs written"),
            "{damage}: resume trusted runs.csv: {said}"
        );
        for ((name, w), (_, g)) in want.iter().zip(snapshot(&cut)) {
            assert!(*w == g, "{damage}: {name} differs after resume");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_reruns_runs_whose_rows_a_truncated_file_lost() {
    let dir = tmp_dir("resume-truncated");
    let (file, _, want) = reference_run(&dir, "s.toml", SWEEP, &["--jobs", "2"]);
    // Each file cut to its header (every run lost its rows), or its last line removed
    // (the last run lost one row): resume re-runs exactly the runs concerned.
    let cuts: [(&str, usize, &str); 8] = [
        ("latency.csv", 1, " 4 runs written"),
        ("timeseries.csv", 1, " 4 runs written"),
        ("components.csv", 1, " 4 runs written"),
        ("trace.json", 1, " 4 runs written"),
        ("latency.csv", usize::MAX, " 1 runs written"),
        ("timeseries.csv", usize::MAX, " 1 runs written"),
        ("components.csv", usize::MAX, " 1 runs written"),
        ("trace.json", usize::MAX, " 1 runs written"),
    ];
    for (i, (name, keep, said_want)) in cuts.iter().enumerate() {
        let cut = dir.join(format!("cut-{i}"));
        run_ok(&file, &cut, &["--jobs", "2"]);
        let path = cut.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let kept = if *keep == usize::MAX {
            // trace.json ends with a closing line: drop the last event before it too.
            let drop = if *name == "trace.json" { 3 } else { 1 };
            lines[..lines.len() - drop].concat()
        } else {
            lines[..*keep].concat()
        };
        std::fs::write(&path, kept).unwrap();
        let said = run_ok(&file, &cut, &["--resume"]);
        assert!(said.contains(said_want), "{name} cut to {keep}: {said}");
        for ((n, w), (_, g)) in want.iter().zip(snapshot(&cut)) {
            assert!(*w == g, "{name} cut: {n} differs after resume");
        }
        // Complete again: a second resume runs nothing.
        let said = run_ok(&file, &cut, &["--resume"]);
        assert!(said.contains(" 0 runs written"), "{name}: {said}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn names_are_identifiers_enforced_by_the_loader() {
    let dir = tmp_dir("names");
    let model = |svc: &str| {
        format!(
            "[[clients]]\nname = \"users\"\ntarget = {svc:?}\nrate = 10\n[[services]]\nname = {svc:?}\nservice_time = \"1ms\"\n"
        )
    };
    for bad in [
        "../../x",
        "/abs",
        "..",
        "",
        ".hidden",
        "a b",
        "a\nb",
        "=cmd|' /C calc'!A0",
    ] {
        let f = write(
            &dir,
            "e.toml",
            &format!(
                "name = {bad:?}\nduration = \"1s\"\n[model]\n{}",
                model("app").replace("[[", "[[model.")
            ),
        );
        let r = dssim(&["check", f.to_str().unwrap()]);
        assert_eq!(
            r.status.code(),
            Some(2),
            "name {bad:?} accepted: {}",
            out(&r)
        );
        assert!(err(&r).contains("name"), "{}", err(&r));
        let r = dssim(&["check", f.to_str().unwrap()]);
        assert!(!dir.join("x").exists());
        drop(r);
    }
    for bad in ["a,b", "a\rb", "=cmd|' /C calc'!A0", "-x", "a.b"] {
        let f = write(&dir, "m.toml", &model(bad));
        let r = dssim(&["check", f.to_str().unwrap()]);
        assert_eq!(r.status.code(), Some(2), "service {bad:?} accepted");
        assert!(
            err(&r).contains("services.") && err(&r).contains("not a valid name"),
            "{}",
            err(&r)
        );
    }
    let f = write(&dir, "ok.toml", &model("app-1_x"));
    let r = dssim(&["check", f.to_str().unwrap(), "--set", "name=\"foo\""]);
    assert!(r.status.success(), "{}", err(&r));
    assert!(out(&r).contains("experiment   foo\n"), "{}", out(&r));
    let r = dssim(&["check", f.to_str().unwrap(), "--set", "name=../../x"]);
    assert_eq!(r.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn swept_values_with_commas_round_trip_and_resume() {
    let dir = tmp_dir("csv-quote");
    let file = write(
        &dir,
        "q.toml",
        "duration = \"1s\"\n[model]\n[[model.clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 50\n\
         [[model.services]]\nname = \"app\"\nservice_time = \"1ms\"\n\
         [sweep]\n\"services.app.service_time\" = [\"hyperexp(0.9, 1ms, 10ms)\", \"exp(2ms)\"]\n",
    );
    let folder = dir.join("out");
    run_ok(&file, &folder, &[]);
    let rows = read_csv(&folder.join("runs.csv"));
    assert_eq!(
        rows[0]["services.app.service_time"],
        "hyperexp(0.9, 1ms, 10ms)"
    );
    let r = dssim(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        folder.to_str().unwrap(),
        "--resume",
    ]);
    assert!(r.status.success(), "{}", err(&r));
    assert!(
        out(&r).contains(" 0 runs written") && out(&r).contains("2 already recorded"),
        "{}",
        out(&r)
    );
    // A line break in a swept value, or a swept path that is not a name, is refused.
    let bad = write(
        &dir,
        "b.toml",
        &std::fs::read_to_string(&file)
            .unwrap()
            .replace("\"exp(2ms)\"", "\"exp(2ms)\\n\""),
    );
    assert_eq!(
        dssim(&["check", bad.to_str().unwrap()]).status.code(),
        Some(2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn input_files_are_capped_and_the_manifest_records_trace_files_by_hash() {
    let r = dssim_within(&["check", "/dev/zero"], 20);
    assert_eq!(r.status.code(), Some(2));
    assert!(err(&r).contains("larger than"), "{}", err(&r));
    let dir = tmp_dir("caps");
    let arrivals: String = (0..2000)
        .map(|i| format!("{}\n", i as f64 * 0.001))
        .collect();
    write(&dir, "arrivals.csv", &arrivals);
    let file = write(
        &dir,
        "t.toml",
        "duration = \"2s\"\nreplications = 3\n[model]\n[[model.clients]]\nname = \"users\"\ntarget = \"app\"\narrival = \"trace\"\nfile = \"arrivals.csv\"\n\
         [[model.services]]\nname = \"app\"\nservice_time = \"0.1ms\"\n",
    );
    let f = file.to_str().unwrap();
    let r = dssim(&["check", f, "--max-trace-size", "1KB"]);
    assert_eq!(r.status.code(), Some(2), "{}", out(&r));
    assert!(err(&r).contains("--max-trace-size"), "{}", err(&r));
    let folder = dir.join("out");
    run_ok(&file, &folder, &[]);
    let manifest = std::fs::read_to_string(folder.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("fnv1a64:") && manifest.contains("arrivals.csv"),
        "{manifest}"
    );
    assert!(
        manifest.len() < arrivals.len(),
        "the manifest copies the arrivals ({} bytes)",
        manifest.len()
    );
    let o = folder.to_str().unwrap();
    let r = dssim(&["replay", o, "--run", "2"]);
    assert!(r.status.success(), "{}", err(&r));
    // A changed trace file is noticed by replay.
    write(&dir, "arrivals.csv", &arrivals.replace("0.5\n", "0.6\n"));
    let r = dssim(&["replay", o, "--run", "1"]);
    assert!(
        !r.status.success() && err(&r).contains("changed"),
        "{}",
        err(&r)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn small_inputs_give_clear_errors() {
    let dir = tmp_dir("small");
    // Duplicate JSON keys, inside [sweep] or anywhere.
    let json = write(
        &dir,
        "d.json",
        r#"{"duration": "1s", "model": {"clients": [{"name": "u", "target": "app", "rate": 10}],
            "services": [{"name": "app", "service_time": "1ms"}]},
            "sweep": {"services.app.workers": [1, 2], "services.app.workers": [3]}}"#,
    );
    let r = dssim(&["check", json.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2), "{}", out(&r));
    assert!(err(&r).contains("duplicate key"), "{}", err(&r));
    // timeseries = "0s".
    let ts = write(
        &dir,
        "ts.toml",
        "duration = \"1s\"\n[output]\ntimeseries = \"0s\"\n[model]\n[[model.clients]]\nname = \"u\"\ntarget = \"app\"\nrate = 10\n[[model.services]]\nname = \"app\"\nservice_time = \"1ms\"\n",
    );
    let r = dssim(&["check", ts.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(err(&r).contains("timeseries"), "{}", err(&r));
    // A huge unknown key: a short message.
    let key = "k".repeat(1_000_000);
    let big = write(
        &dir,
        "big.toml",
        &format!("{key} = 1\n[[clients]]\nname = \"u\"\ntarget = \"app\"\nrate = 1\n"),
    );
    let r = dssim(&["check", big.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(r.stderr.len() < 10_000, "a {}-byte message", r.stderr.len());
    // replay of an unknown run: a bad argument.
    let ok = write(
        &dir,
        "ok.toml",
        &std::fs::read_to_string(&ts)
            .unwrap()
            .replace("timeseries = \"0s\"", "timeseries = \"1s\""),
    );
    let folder = dir.join("out");
    run_ok(&ok, &folder, &[]);
    let r = dssim(&["replay", folder.to_str().unwrap(), "--run", "99"]);
    assert_eq!(r.status.code(), Some(2), "{}", err(&r));
    // --jobs 100000 runs on a handful of threads.
    assert!(
        dssim_lab::runner::worker_threads(100_000)
            <= 4 * std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    run_ok(&ok, &folder, &["--jobs", "100000"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn huge_sweeps_are_summarised_checked_by_covering_points_and_limited() {
    let dir = tmp_dir("huge");
    let vals = |n: usize| {
        (1..=n)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let exp = |a: usize, b: usize| {
        format!(
            "duration = \"1s\"\n[model]\n[[model.clients]]\nname = \"u\"\ntarget = \"app\"\nrate = 10\n\
             [[model.services]]\nname = \"app\"\nservice_time = \"1ms\"\n\
             [sweep]\n\"services.app.workers\" = [{}]\n\"services.app.instances\" = [{}]\n",
            vals(a),
            vals(b)
        )
    };
    let f = write(&dir, "m.toml", &exp(1000, 1000));
    let r = dssim_within(&["check", f.to_str().unwrap()], 60);
    assert!(r.status.success(), "{}", err(&r));
    let said = out(&r);
    assert!(
        said.contains("1000000 run(s)") && said.contains("(1000 values)"),
        "{said}"
    );
    assert!(said.len() < 5_000, "check printed {} bytes", said.len());
    let f = write(&dir, "g.toml", &exp(100_000, 100_000));
    let r = dssim_within(&["check", f.to_str().unwrap()], 60);
    assert_eq!(r.status.code(), Some(2), "{said}");
    assert!(
        err(&r).contains("limit") && err(&r).contains("--force"),
        "{}",
        err(&r)
    );
    // A bad value anywhere in a list too long to check point by point is found up front.
    let bad = write(&dir, "b.toml", &exp(1000, 1000).replace(", 777,", ", -1,"));
    let r = dssim_within(&["check", bad.to_str().unwrap()], 60);
    assert_eq!(r.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_3000_component_model_builds_and_runs_promptly() {
    let dir = tmp_dir("many");
    let mut m = String::new();
    for i in 0..1000 {
        m.push_str(&format!(
            "[[clients]]\nname = \"u{i}\"\ntarget = \"s{i}\"\nrate = 1\n[[services]]\nname = \"s{i}\"\nservice_time = \"1ms\"\ndatabase = \"d{i}\"\n\
             [[databases]]\nname = \"d{i}\"\nread_time = \"1ms\"\nwrite_time = \"1ms\"\n"
        ));
    }
    let f = write(&dir, "many.toml", &m);
    let folder = dir.join("out");
    // A guard against quadratic and cubic name lookups, not a timing: minutes before.
    let r = dssim_within(
        &[
            "run",
            f.to_str().unwrap(),
            "--out",
            folder.to_str().unwrap(),
            "--set",
            "duration=1s",
            "--max-memory",
            "64GiB",
        ],
        120,
    );
    assert!(r.status.success(), "{}", err(&r));
    let _ = std::fs::remove_dir_all(&dir);
}

fn opts(secs: u64) -> RunOptions {
    RunOptions::new(3, SimTime::from_secs(secs), SimTime::ZERO)
}

#[test]
fn five_services_each_behind_a_cache_answer_every_request() {
    let mut text = String::from(
        "[[clients]]\nname = \"users\"\ntarget = \"s1\"\nrate = 200\nkeys = 1000000\n",
    );
    for i in 1..=5 {
        text.push_str(&format!("[[services]]\nname = \"s{i}\"\nservice_time = \"exp(1ms)\"\nworkers = 8\ncache = \"c{i}\"\n"));
        if i == 5 {
            text.push_str("database = \"db\"\n");
        }
        text.push_str(&format!("[[caches]]\nname = \"c{i}\"\ncapacity = 100\n"));
        if i < 5 {
            text.push_str(&format!("origin = \"s{}\"\n", i + 1));
        }
    }
    text.push_str("[[databases]]\nname = \"db\"\nread_time = \"1ms\"\nwrite_time = \"2ms\"\n");
    let m = crate::support::model(&text);
    let r = m.build(&opts(5)).expect("build").run().expect("run");
    let (reqs, ok) = (r.metric("requests").unwrap(), r.metric("ok").unwrap());
    assert!(
        reqs > 500.0 && ok == reqs,
        "{ok} of {reqs} requests answered ok"
    );
}

/// No cap on the return path: a chain of 140 services, each but the last calling the
/// next through a cache, puts each request 279 callers deep (the table once refused past 255, answering every request with an error
/// while `check` said ok).
#[test]
fn a_chain_deeper_than_255_hops_answers_every_request() {
    let n = 140;
    let mut text =
        String::from("[[clients]]\nname = \"users\"\ntarget = \"s1\"\nrate = 50\nkeys = 1000000\n");
    // s1 -> c1 -> s2 -> c2 -> ... -> s140: each service waits on its cache, each cache
    // (a miss: a million keys) on the next service.
    for i in 1..=n {
        text.push_str(&format!(
            "[[services]]\nname = \"s{i}\"\nservice_time = \"10us\"\nworkers = 64\n"
        ));
        if i < n {
            text.push_str(&format!(
                "cache = \"c{i}\"\n[[caches]]\nname = \"c{i}\"\ncapacity = 100\norigin = \"s{}\"\n",
                i + 1
            ));
        }
    }
    let m = crate::support::model(&text);
    let r = m.build(&opts(2)).expect("build").run().expect("run");
    let (reqs, ok) = (r.metric("requests").unwrap(), r.metric("ok").unwrap());
    assert!(
        reqs > 50.0 && ok == reqs,
        "{ok} of {reqs} requests answered ok"
    );
    // The deepest caller waits the whole chain: p50 is over 140 service times.
    assert!(
        r.metric("p50_ms").unwrap() > 1.4,
        "{:?}",
        r.metric("p50_ms")
    );
}

#[test]
fn a_run_stops_cleanly_at_its_limits_while_it_runs() {
    // A retry storm: no backoff, one worker, no queue; every shed attempt retries at once.
    let m = crate::support::model(
        "[[clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 1000\ntimeout = \"1s\"\nretries = { max = 100000 }\n\
         [[services]]\nname = \"app\"\nworkers = 1\nqueue = 0\nservice_time = \"exp(10ms)\"\n",
    );
    let names = || {
        (
            "--max-events".to_string(),
            "--max-memory".to_string(),
            "clients.users.retries.max".to_string(),
        )
    };
    let mut w = m.build(&opts(1)).expect("build");
    w.set_cap(RunCap {
        events: 3_000_000,
        bytes: u64::MAX,
        names: names(),
    });
    match w.run() {
        Err(RunError::Limit(msg)) => assert!(
            msg.contains("--max-events") && msg.contains("retries.max"),
            "{msg}"
        ),
        other => panic!(
            "ran past the events limit: {:?}",
            other.map(|r| r.metric("events"))
        ),
    }
    // Unreached timeouts no longer sit in the event queue (a deadline FIFO per client), so
    // the storm above holds little memory. What grows is a backlog: 20,000 requests/s into
    // one worker doing 100/s, no timeout, an unbounded queue: every request stays in flight.
    let backlog = crate::support::model(
        "[[clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 20000\n\
         [[services]]\nname = \"app\"\nworkers = 1\nservice_time = \"exp(10ms)\"\nshedding = \"none\"\n",
    );
    let mut w = backlog.build(&opts(120)).expect("build");
    w.set_cap(RunCap {
        events: u64::MAX,
        bytes: 64 << 20,
        names: names(),
    });
    match w.run() {
        Err(RunError::Limit(msg)) => assert!(msg.contains("--max-memory"), "{msg}"),
        other => panic!(
            "ran past the memory limit: {:?}",
            other.map(|r| r.metric("events"))
        ),
    }
    // The estimate bounds it before the run: refused, naming the retries (their events:
    // 1,000/s × 100 s × 100,001 attempts; timeouts no longer count as memory).
    let dir = tmp_dir("storm");
    let f = write(
        &dir,
        "storm.toml",
        "duration = \"100s\"\n[model]\n[[model.clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 1000\ntimeout = \"1s\"\nretries = { max = 100000 }\n\
         [[model.services]]\nname = \"app\"\nworkers = 1\nqueue = 0\nservice_time = \"exp(10ms)\"\n",
    );
    let r = dssim(&["check", f.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(err(&r).contains("retries.max"), "{}", err(&r));
    // A long timeout that is never reached holds no memory: 60 s with a 1 h timeout is fine.
    let f = write(
        &dir,
        "long.toml",
        "duration = \"60s\"\n[model]\n[[model.clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 10000\ntimeout = \"1h\"\n\
         [[model.services]]\nname = \"app\"\nworkers = 16\nservice_time = \"exp(1ms)\"\n",
    );
    let r = dssim(&["check", f.to_str().unwrap()]);
    assert!(r.status.success(), "{}", err(&r));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sub_microsecond_service_times_are_not_underestimated() {
    let m = crate::support::model(
        "[[clients]]\nname = \"users\"\ntarget = \"app\"\narrival = \"closed\"\nusers = 4\n\
         [[services]]\nname = \"app\"\nworkers = 4\nservice_time = \"exp(200ns)\"\n",
    );
    let o = RunOptions {
        duration: SimTime::from_millis(20),
        ..opts(1)
    };
    let est = dssim_lab::limits::estimate(&m, &o).events;
    let real = m
        .build(&o)
        .expect("build")
        .run()
        .expect("run")
        .metric("events")
        .unwrap();
    assert!(
        est >= real,
        "estimated {est:.3e} events, the run made {real:.3e}"
    );
}
