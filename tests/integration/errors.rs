//! Bad input: exit code 2, one clear message on stderr with `file:line:col` where it
//! applies, a "did you mean" for misspelled names, and never a panic.

use std::path::Path;
use std::process::Output;

use crate::support::{dssim, dssim_within, tmp_dir, write};

/// A valid experiment; tests break one thing in it.
const GOOD: &str = r#"name = "e"
duration = "2s"
seed = 1

[model]
[[model.clients]]
name = "users"
target = "server"
rate = 5

[[model.services]]
name = "server"
service_time = "exp(1ms)"
"#;

fn check(file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["check", file.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    dssim(&args)
}

/// Asserts a bad-input failure: exit code 2, no panic, and stderr containing every needle.
fn assert_input_error(o: &Output, needles: &[&str]) -> String {
    crate::support::assert_input_error("bad input", o, needles)
}

/// Checks GOOD with `from` replaced by `to`, written to `name` in `dir`: an input error
/// whose message holds every needle. Returns the message.
fn check_edited(dir: &Path, name: &str, from: &str, to: &str, needles: &[&str]) -> String {
    let f = write(dir, name, &GOOD.replace(from, to));
    assert_input_error(&check(&f, &[]), needles)
}

#[test]
fn the_valid_file_checks_ok() {
    let dir = tmp_dir("good");
    let f = write(&dir, "good.toml", GOOD);
    let o = check(&f, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 run(s)"));
}

#[test]
fn a_misspelled_key_gives_its_position_and_a_suggestion() {
    let dir = tmp_dir("key");
    let f = write(&dir, "bad.toml", &GOOD.replace("rate = 5", "rat = 5"));
    let loc = format!("{}:9:1", f.display());
    assert_input_error(&check(&f, &[]), &[&loc, "did you mean `rate`"]);
    // `run` reports the same error.
    let out = dir.join("out");
    let o = dssim(&[
        "run",
        f.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_input_error(&o, &[&loc, "did you mean `rate`"]);
}

#[test]
fn a_misspelled_experiment_key_and_enum_value_give_suggestions() {
    let dir = tmp_dir("keys");
    check_edited(
        &dir,
        "a.toml",
        "seed = 1",
        "sead = 1",
        &[":3:1", "did you mean `seed`"],
    );
    check_edited(
        &dir,
        "b.toml",
        "rate = 5",
        "rate = 5\narrival = \"poison\"",
        &[":10:11", "did you mean `poisson`"],
    );
    check_edited(
        &dir,
        "c.toml",
        "\"exp(1ms)\"",
        "\"expo(1ms)\"",
        &[":13:16", "did you mean \"exp\""],
    );
}

#[test]
fn an_unknown_target_names_the_closest_component() {
    let dir = tmp_dir("target");
    let err = check_edited(
        &dir,
        "bad.toml",
        "target = \"server\"",
        "target = \"sever\"",
        &[":8:10", "\"sever\"", "did you mean \"server\""],
    );
    // The hint is the suggestion alone, not the rest of the message.
    assert!(
        !err.contains("Help: did you mean \"server\"?); known names"),
        "garbled hint:\n{err}"
    );
}

#[test]
fn a_bad_duration_is_pointed_at() {
    let dir = tmp_dir("dur");
    check_edited(
        &dir,
        "bad.toml",
        "\"2s\"",
        "\"2 parsecs\"",
        &[":2:12", "unit"],
    );
    check_edited(&dir, "neg.toml", "\"2s\"", "\"-2s\"", &[":2:12"]);
    check_edited(
        &dir,
        "warm.toml",
        "seed = 1",
        "seed = 1\nwarmup = \"5s\"",
        &[":4:10", "warmup"],
    );
    // Text before the error with multi-byte characters: the excerpt's header points at the
    // same line and column as the message.
    let f = write(
        &dir,
        "utf8.toml",
        &GOOD.replace(
            "seed = 1",
            "# 1M users × 10% ≈ 100k — per day\nseed = 1\nwarmup = \"5s\"",
        ),
    );
    assert_input_error(
        &check(&f, &[]),
        &["utf8.toml:5:10: warmup", "utf8.toml:5:10 ]"],
    );
}

#[test]
fn bad_set_paths_and_values_are_input_errors() {
    let dir = tmp_dir("set");
    let f = write(&dir, "good.toml", GOOD);
    assert_input_error(
        &check(&f, &["--set", "servces.server.workers=3"]),
        &["--set", "did you mean `services`"],
    );
    assert_input_error(
        &check(&f, &["--set", "services.server.wokers=3"]),
        &["did you mean `workers`"],
    );
    assert_input_error(
        &check(&f, &["--set", "services.srever.workers=3"]),
        &["server"],
    );
    assert_input_error(&check(&f, &["--set", "duration=abc"]), &["duration"]);
    assert_input_error(&check(&f, &["--set", "no-equals-sign"]), &["PATH=VALUE"]);
    let out = dir.join("out");
    let o = dssim(&[
        "run",
        f.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--shard",
        "3/2",
    ]);
    assert_input_error(&o, &["K/N"]);
}

#[test]
fn json_files_load_with_the_same_schema_and_errors() {
    let dir = tmp_dir("json");
    let good = r#"{"name": "j", "duration": "5s", "warmup": "1s", "seed": 3,
 "model": {"clients": [{"name": "users", "target": "server", "rate": 100}],
           "services": [{"name": "server", "service_time": "exp(1ms)"}]}}"#;
    let f = write(&dir, "good.json", good);
    let out = dir.join("out");
    let o = dssim(&[
        "run",
        f.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let runs = std::fs::read_to_string(out.join("runs.csv")).expect("runs.csv");
    assert_eq!(runs.lines().count(), 2);
    let f = write(&dir, "bad.json", &good.replace("\"rate\"", "\"rat\""));
    assert_input_error(&check(&f, &[]), &["bad.json:2:", "did you mean `rate`"]);
    let f = write(&dir, "trunc.json", "{\"name\": ");
    assert_input_error(&check(&f, &[]), &["trunc.json:1:"]);
}

#[test]
fn invalid_toml_syntax_gives_line_and_column() {
    let dir = tmp_dir("syntax");
    check_edited(
        &dir,
        "bad.toml",
        "rate = 5",
        "rate = 5 =",
        &["bad.toml:9:10"],
    );
    check_edited(
        &dir,
        "unclosed.toml",
        "\"exp(1ms)\"",
        "\"exp(1ms)",
        &["unclosed.toml:13:"],
    );
}

/// A battery of bad values: each must be refused with exit code 2, a message, no panic,
/// and must not hang (a rate too high to simulate once looped forever at time zero).
#[test]
fn bad_values_never_panic_or_hang() {
    let dir = tmp_dir("values");
    let cases: &[(&str, &str)] = &[
        ("rate = 5", "rate = -5"),
        ("rate = 5", "rate = \"abc\""),
        ("rate = 5", "rate = nan"),
        ("rate = 5", "rate = inf"),
        ("rate = 5", "rate = 1e300"),
        ("rate = 5", "rate = 5\nread_ratio = 1.5"),
        ("rate = 5", "rate = 5\ntimeout = \"0s\""),
        ("rate = 5", "rate = 5\nkeys = 0"),
        ("rate = 5", "rate = 5\npopularity = \"zipf(-1)\""),
        ("rate = 5", "arrival = \"closed\""),
        ("service_time = \"exp(1ms)\"", "service_time = \"exp(\""),
        (
            "service_time = \"exp(1ms)\"",
            "service_time = \"exp(-1ms)\"",
        ),
        (
            "service_time = \"exp(1ms)\"",
            "service_time = \"uniform(9ms, 1ms)\"",
        ),
        (
            "service_time = \"exp(1ms)\"",
            "service_time = \"hyperexp(1.5, 1ms, 2ms)\"",
        ),
        (
            "service_time = \"exp(1ms)\"",
            "service_time = \"pareto(1ms, 0)\"",
        ),
        ("service_time = \"exp(1ms)\"", "service_time = 5"),
        (
            "service_time = \"exp(1ms)\"",
            "service_time = \"exp(1ms)\"\nworkers = -1",
        ),
        (
            "service_time = \"exp(1ms)\"",
            "service_time = \"exp(1ms)\"\nworkers = 0",
        ),
        (
            "service_time = \"exp(1ms)\"",
            "service_time = \"exp(1ms)\"\ninstances = 0",
        ),
        (
            "service_time = \"exp(1ms)\"",
            "service_time = \"exp(1ms)\"\nspeed = 0",
        ),
        (
            "service_time = \"exp(1ms)\"",
            "service_time = \"exp(1ms)\"\nspeed = -1",
        ),
        (
            "service_time = \"exp(1ms)\"",
            "service_time = \"exp(1ms)\"\nname = \"server\"",
        ),
        ("seed = 1", "seed = -1"),
        ("seed = 1", "seed = 1\nreplications = 0"),
        ("seed = 1", "seed = 1\nmodel = 5"),
        (
            "seed = 1",
            "seed = 1\n[sweep]\n\"services.server.workers\" = []",
        ),
        (
            "seed = 1",
            "seed = 1\n[sweep]\n\"services.server.workers\" = 3",
        ),
        (
            "seed = 1",
            "seed = 1\n[sweep]\n\"services.server.wrkers\" = [1, 2]",
        ),
        ("seed = 1", "seed = 1\n[output]\ntimeseries = \"soon\""),
        ("[model]", "[model]\n[[model.cashes]]\nname = \"c\""),
    ];
    for (i, (from, to)) in cases.iter().enumerate() {
        assert!(
            GOOD.contains(from),
            "case {i}: {from:?} is not in the base file"
        );
        let f = write(&dir, &format!("case{i}.toml"), &GOOD.replacen(from, to, 1));
        let out = dir.join(format!("out{i}"));
        let o = dssim_within(
            &[
                "run",
                f.to_str().expect("utf-8"),
                "--out",
                out.to_str().expect("utf-8"),
            ],
            20,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(2),
            "case {i} ({to:?}) should be refused as bad input; stderr:\n{err}"
        );
        assert!(
            !err.contains("panicked"),
            "case {i} ({to:?}) panicked:\n{err}"
        );
        assert!(
            err.to_lowercase().starts_with("error"),
            "case {i} ({to:?}): stderr should open with the error: {err}"
        );
    }
    // Not TOML at all, an empty file, a missing file.
    let f = dir.join("binary.toml");
    std::fs::write(&f, b"\xff\xfe\x00garbage").expect("write");
    assert_input_error(&check(&f, &[]), &["binary.toml"]);
    let f = write(&dir, "empty.toml", "");
    assert_input_error(&check(&f, &[]), &["clients"]);
    assert_eq!(check(&dir.join("missing.toml"), &[]).status.code(), Some(2));
    // Unknown commands and flags are usage errors, also exit 2.
    assert_eq!(dssim(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(dssim(&["run", "--jobz", "2"]).status.code(), Some(2));
}

#[test]
fn bad_job_priorities_are_input_errors() {
    let dir = tmp_dir("prio");
    let queue = |prio: &str| {
        format!(
            "{GOOD}\n[[model.queues]]\nname = \"jobs\"\nproducer = \"server\"\n\
             job_time = \"exp(1ms)\"\npriorities = {prio}\n"
        )
    };
    let good = write(
        &dir,
        "good.toml",
        &queue(r#"[{ name = "high", share = 0.2 }, { name = "low", share = 0.8 }]"#),
    );
    let o = check(&good, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (i, (prio, needles)) in [
        (
            r#"[{ name = "high", share = 0.2 }, { name = "low", share = 0.7 }]"#,
            &["queues.jobs.priorities", "add up to 1"][..],
        ),
        (
            r#"[{ name = "high", share = 0.5 }, { name = "high", share = 0.5 }]"#,
            &["queues.jobs.priorities[1].name", "listed twice"][..],
        ),
        (
            r#"[{ name = "high", share = 0.0 }, { name = "low", share = 1.0 }]"#,
            &["queues.jobs.priorities[0].share", "more than 0"][..],
        ),
        (
            r#"[{ name = "high", shar = 1.0 }]"#,
            &["did you mean `share`"][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let f = write(&dir, &format!("bad{i}.toml"), &queue(prio));
        assert_input_error(&check(&f, &[]), needles);
    }
}

#[test]
fn bad_batching_and_read_model_options_are_input_errors() {
    let dir = tmp_dir("batch");
    let db = |extra: &str| {
        format!(
            "{GOOD}database = \"db\"\n\n[[model.databases]]\nname = \"db\"\nreplicas = 1\n\
             read_time = \"1ms\"\nwrite_time = \"1ms\"\n{extra}\n"
        )
    };
    let good = write(
        &dir,
        "good.toml",
        &db("replica_read_time = \"exp(1ms)\"\nbatch = { size = 10, max_wait = \"5ms\" }"),
    );
    let o = check(&good, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (i, (extra, needles)) in [
        (
            "replica_read_tme = \"1ms\"",
            &[":21:1", "did you mean `replica_read_time`"][..],
        ),
        ("replica_read_time = \"fast\"", &[":21:21"][..]),
        (
            "batch = { size = 0, max_wait = \"5ms\" }",
            &["databases.db.batch.size", "at least 1"][..],
        ),
        (
            "batch = { size = 10, max_wiat = \"5ms\" }",
            &["did you mean `max_wait`"][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let f = write(&dir, &format!("bad{i}.toml"), &db(extra));
        assert_input_error(&check(&f, &[]), needles);
    }
}
