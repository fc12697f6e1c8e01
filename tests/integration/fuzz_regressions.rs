//! Inputs the fuzzer (fuzz/, `fuzz/run.sh`) or the limits work found troublesome: each is
//! loaded, resolved and validated as `dssim check` would, and must end in a clean error
//! (exit 2, a message naming the offending value, no panic) within seconds.

use crate::support::{dssim_within, tmp_dir, write};

/// Runs `dssim check` on `text` and expects exit 2 with every one of `wants` in stderr.
fn refused(name: &str, text: &str, wants: &[&str]) {
    let dir = tmp_dir("fuzz-reg");
    let f = write(&dir, name, text);
    let o = dssim_within(&["check", f.to_str().unwrap()], 20);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for w in wants {
        assert!(stderr.contains(w), "missing {w:?} in:\n{stderr}");
    }
}

#[test]
fn a_hundred_million_instances_are_refused_by_the_memory_estimate() {
    refused(
        "huge.toml",
        "[[clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 10\n\n[[services]]\nname = \"app\"\ninstances = 100000000\nservice_time = \"exp(1ms)\"\n",
        &["services.app.instances", "--max-memory", "--force", "huge.toml:8:"],
    );
}

#[test]
fn a_closed_loop_that_never_advances_the_clock_is_refused() {
    refused(
        "spin.toml",
        "[[clients]]\nname = \"users\"\ntarget = \"app\"\narrival = \"closed\"\nusers = 5\n\n[[services]]\nname = \"app\"\nservice_time = \"0ms\"\n",
        &["clients.users.think", "loop forever at one instant"],
    );
}

#[test]
fn a_rate_past_the_event_limit_names_the_rate() {
    refused(
        "busy.toml",
        "duration = \"1000s\"\n[model]\n[[model.clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 1e8\n\n[[model.services]]\nname = \"app\"\nservice_time = \"exp(1ms)\"\n",
        &["clients.users.rate × duration", "--max-events", "busy.toml:6:"],
    );
}

#[test]
fn a_zero_capacity_cache_is_refused() {
    refused(
        "zero.toml",
        "[[clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 10\n\n[[services]]\nname = \"app\"\nservice_time = \"exp(1ms)\"\ncache = \"c\"\n\n[[caches]]\nname = \"c\"\ncapacity = 0\n",
        &["caches.c.capacity", "at least 1"],
    );
}

#[test]
fn a_cache_whose_origin_balances_back_to_its_own_service_is_refused() {
    refused(
        "loop.toml",
        "[[clients]]\nname = \"users\"\ntarget = \"lb\"\nrate = 10\n\n[[load_balancers]]\nname = \"lb\"\nbackends = \"app\"\n\n[[services]]\nname = \"app\"\nservice_time = \"exp(1ms)\"\ncache = \"c\"\n\n[[caches]]\nname = \"c\"\norigin = \"lb\"\n",
        &["caches.c.origin", "loop"],
    );
}

#[test]
fn force_and_raised_limits_let_a_big_run_through_check() {
    let dir = tmp_dir("fuzz-reg");
    let f = write(
        &dir,
        "busy.toml",
        "duration = \"1000s\"\n[model]\n[[model.clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 1e8\n\n[[model.services]]\nname = \"app\"\nservice_time = \"exp(1ms)\"\n",
    );
    for extra in [
        &["--force"][..],
        &["--max-events", "1e13", "--max-memory", "1TiB"][..],
    ] {
        let mut args = vec!["check", f.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = dssim_within(&args, 20);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(stdout.contains("per run"), "{stdout}");
    }
}

/// Found by `load_json` (a libFuzzer timeout): db-connections with the database times
/// mutated to `exp(0ms)`. Eight closed-loop users with no think time against zero service
/// and database time looped forever at one instant; now validation refuses it.
#[test]
fn fuzz_closed_loop_against_a_zero_time_database_is_refused() {
    let text = include_str!("../fuzz/closed-loop-zero-time.json");
    refused(
        "closed-loop-zero-time.json",
        text,
        &["clients.users.think", "loop forever at one instant"],
    );
    // The same with the database given time runs.
    let dir = tmp_dir("fuzz-reg");
    let fixed = text.replace("exp(0ms)", "exp(1ms)");
    let f = write(&dir, "ok.json", &fixed);
    let o = dssim_within(
        &[
            "run",
            f.to_str().unwrap(),
            "--set",
            "warmup=0s",
            "--set",
            "duration=200ms",
            "--set",
            "replications=1",
            "--out",
            dir.join("out").to_str().unwrap(),
        ],
        60,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
