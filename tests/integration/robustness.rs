//! Robustness beyond `errors`: broken files and command-line mistakes exit 2, an unwritable
//! output folder exits 1 with its path, and nothing a user can type makes dssim panic or
//! hang: a deterministic,
//! structure-aware mutation of a valid experiment (every truncation, every deleted line,
//! every value replaced by an edge case) must load, check and run, or fail cleanly.

use std::fs;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use crate::support::{dssim_in, tmp_dir};

const GOOD: &str = r#"name = "t"
duration = "10s"
[model]
[[model.clients]]
name = "users"
target = "server"
rate = 800
[[model.services]]
name = "server"
service_time = "exp(1ms)"
"#;

/// Runs `dssim args` on `file` holding `text`; returns (exit code, stderr).
fn fails(dir: &Path, file: &str, text: &[u8], args: &[&str]) -> (i32, String) {
    fs::write(dir.join(file), text).unwrap();
    let mut a: Vec<&str> = args.to_vec();
    a.insert(1, file);
    let out = dssim_in(dir, &a);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "dssim panicked:\n{err}");
    (out.status.code().expect("exit code, not a signal"), err)
}

/// The first line of stderr: the one-line summary a script would log (the hint, if any,
/// follows below it).
fn first_line(err: &str) -> &str {
    err.lines().next().unwrap_or("")
}

#[test]
fn unreadable_inputs_exit_2() {
    let dir = tmp_dir("err_unreadable");
    let garbage: Vec<u8> = (0..512u32).map(|i| (i * 7919 % 251) as u8).collect();
    for (name, text) in [
        ("garbage.toml", &garbage[..]),
        ("empty.toml", b"" as &[u8]),
        ("broken.toml", b"[model\nname = "),
        ("broken.json", b"{\"model\": [1, 2"),
        ("array.json", b"[1, 2, 3]"),
    ] {
        let (code, err) = fails(&dir, name, text, &["check"]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(first_line(&err).contains(name), "{name}: {err}");
    }
    let out = dssim_in(&dir, &["check", "no-such-file.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-file.toml"));
}

#[test]
fn command_line_mistakes_exit_2() {
    let dir = tmp_dir("err_cli");
    fs::write(dir.join("x.toml"), GOOD).unwrap();
    for (args, says) in [
        (
            vec!["run", "x.toml", "--set", "services.sever.workers=2"],
            "did you mean `server`?",
        ),
        (
            vec!["run", "x.toml", "--set", "services.server.workers=-1"],
            "services.server.workers",
        ),
        (vec!["run", "x.toml", "--set", "duration"], "PATH=VALUE"),
        (vec!["run", "x.toml", "--shard", "3/2"], "K/N"),
        (vec!["run", "x.toml", "--jobs", "many"], "many"),
        (vec!["frobnicate"], "frobnicate"),
    ] {
        let out = dssim_in(&dir, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: expected {says:?} in {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn an_unwritable_output_folder_exits_1_with_its_path() {
    let dir = tmp_dir("err_out");
    fs::write(dir.join("x.toml"), GOOD.replace("10s", "1s")).unwrap();
    fs::write(dir.join("blocker"), "a file where a folder should be").unwrap();
    let out = dssim_in(&dir, &["run", "x.toml", "--out", "blocker/results"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("blocker"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_closed_loop_that_takes_no_time_is_refused_not_run_forever() {
    // Found by hand while writing the mutation test below: with no think time and a zero
    // service time, every cycle of a closed loop happens at the same instant, and the run
    // never ended. It is now a validation error.
    let dir = tmp_dir("err_zero_loop");
    let text = r#"name = "z"
duration = "1s"
[model]
[[model.clients]]
name = "loop"
target = "app"
arrival = "closed"
users = 2
[[model.services]]
name = "app"
service_time = "exp(1ms)"
speed = 1e300
"#;
    let (code, err) = fails(&dir, "z.toml", text.as_bytes(), &["check"]);
    assert_eq!(code, 2, "{err}");
    assert!(first_line(&err).contains("clients.loop.think"), "{err}");
    // Some think time, or some service time, and the same loop is fine.
    let ok = text.replace("users = 2", "users = 2\nthink = \"1ms\"");
    let (code, err) = fails(&dir, "z.toml", ok.as_bytes(), &["check"]);
    assert_eq!(code, 0, "{err}");
    let ok = text.replace("speed = 1e300", "");
    let (code, err) = fails(&dir, "z.toml", ok.as_bytes(), &["check"]);
    assert_eq!(code, 0, "{err}");
}

/// A richer experiment for mutations: most keys a model file can hold today.
const RICH: &str = r#"name = "m"
duration = "2s"
warmup = "500ms"
seed = 3
replications = 2
[model]
[[model.clients]]
name = "users"
target = "app"
arrival = "poisson"
rate = 300
read_ratio = 0.8
keys = 1000
popularity = "zipf(0.99)"
user_ids = 50
timeout = "50ms"
[[model.clients]]
name = "loop"
target = "app"
arrival = "closed"
users = 4
think = "exp(10ms)"
[[model.services]]
name = "app"
instances = 2
workers = 2
queue = 8
service_time = "hyperexp(0.9, 1ms, 10ms)"
speed = 1.5
[model.network]
latency = "uniform(0.1ms, 0.3ms)"
loss = 0.01
[[model.network.partitions]]
sides = [["users"], ["app.1"]]
from = "1s"
until = "1200ms"
[sweep]
"services.app.workers" = [1, 2]
[output]
timeseries = "250ms"
"#;

/// Values a careless or adversarial user might put anywhere.
const EDGE_VALUES: &[&str] = &[
    "0",
    "-1",
    "1e300",
    "-0.0",
    "nan",
    "inf",
    "9223372036854775807",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
    "true",
    "\"0s\"",
    "\"-1ms\"",
    "\"1e30h\"",
    "\"99999999999999h\"",
    "\"exp(0ms)\"",
    "\"const(0s)\"",
    "\"uniform(5ms, 1ms)\"",
    "\"normal(1ms, -1ms)\"",
    "\"lognormal(0ms, 1ms)\"",
    "\"pareto(1ms, 0.5)\"",
    "\"erlang(0, 1ms)\"",
    "\"hyperexp(2, 1ms, 1ms)\"",
    "\"zipf(-1)\"",
    "\"hotspot(2, 0.5)\"",
    "\"users\"",
    "\"app.7\"",
];

/// Every mutation of `RICH`: truncations, deleted lines, and each value replaced by each
/// edge value.
fn mutations() -> Vec<String> {
    let mut v = Vec::new();
    let bytes = RICH.as_bytes();
    for cut in (0..bytes.len()).step_by(5) {
        v.push(String::from_utf8_lossy(&bytes[..cut]).into_owned());
    }
    let lines: Vec<&str> = RICH.lines().collect();
    for i in 0..lines.len() {
        let mut l = lines.clone();
        l.remove(i);
        v.push(l.join("\n"));
    }
    for (i, line) in lines.iter().enumerate() {
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        for val in EDGE_VALUES {
            let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            l[i] = format!("{key} = {val}");
            v.push(l.join("\n"));
        }
    }
    v
}

/// What happened to one mutated file.
enum Fate {
    /// Refused with an input error.
    Refused,
    /// Loaded and ran every point's first replication.
    Ran,
    /// Loaded but was too big to run here.
    TooBig,
    /// A run failed with a non-input error (allowed only with a message).
    Failed(String),
}

fn try_file(path: &Path) -> Fate {
    let exp = match dssim_lab::Experiment::load(path) {
        Ok(e) => e,
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "a load error must be an input error: {e}");
            assert!(!e.to_string().is_empty());
            return Fate::Refused;
        }
    };
    if let Err(e) = exp.check_all() {
        assert_eq!(
            e.exit_code(),
            2,
            "a check error must be an input error: {e}"
        );
        return Fate::Refused;
    }
    match exp.estimate_events() {
        Ok(ev) if ev.is_finite() && ev <= 2e5 => {}
        Ok(_) => return Fate::TooBig,
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            return Fate::Refused;
        }
    }
    for p in 0..exp.points() {
        let spec = match exp.spec(p * exp.replications as usize) {
            Ok(s) => s,
            Err(_) => return Fate::Refused,
        };
        if let Err(msg) = dssim_lab::run_one(&spec) {
            return Fate::Failed(msg);
        }
    }
    Fate::Ran
}

#[test]
fn no_mutation_of_a_valid_file_panics_or_hangs() {
    let dir = tmp_dir("err_mutations");
    let muts = mutations();
    let (mut refused, mut ran, mut big) = (0, 0, 0);
    let mut problems = Vec::new();
    for (i, text) in muts.iter().enumerate() {
        let path = dir.join(format!("m{i}.toml"));
        fs::write(&path, text).unwrap();
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        // A thread per case: a panic is caught at join, and a hang is noticed by the
        // timeout (the stuck thread is left behind; the test fails anyway).
        let handle = std::thread::spawn(move || {
            let fate = try_file(&p);
            let _ = tx.send(());
            fate
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => match handle.join() {
                Ok(Fate::Refused) => refused += 1,
                Ok(Fate::Ran) => ran += 1,
                Ok(Fate::TooBig) => big += 1,
                Ok(Fate::Failed(msg)) => {
                    problems.push(format!("{}: run failed: {msg}", path.display()))
                }
                Err(_) => problems.push(format!("{}: panicked", path.display())),
            },
            Err(RecvTimeoutError::Timeout) => {
                problems.push(format!("{}: still running after 10 s", path.display()));
            }
        }
    }
    println!(
        "mutations: {} in all, {refused} refused with an input error, {ran} ran, {big} too big to run here, {} problems",
        muts.len(),
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The harness must exercise both sides: many refusals and many runs (about 1,070
    // mutations: most truncations are refused, most deleted lines still run).
    assert!(refused > 100 && ran > 50, "refused {refused}, ran {ran}");
}
