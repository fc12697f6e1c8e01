//! The compute tier: autoscaling, load shedding, connection pools, memory, NIC bandwidth,
//! canaries and job queues. Every run also checks request conservation (`World::run`
//! fails when a request does not end exactly once).
//!
//! Files: `autoscaling`, `shedding`, `resources` (pools, memory, NIC, connections),
//! `deployment` (sizes, sessions, canaries), `jobs`; the validation of compute options
//! and the helpers the files share stay here.

mod autoscaling;
mod deployment;
mod jobs;
mod resources;
mod shedding;

use std::path::Path;

use dssim_components::stats::SeriesRow;
use dssim_components::{ModelConfig, RunOptions, RunReport, World};
use dssim_engine::parse_duration;

use crate::support::{model, users_to_app};

fn opts(seed: u64, duration: &str, warmup: &str, series: Option<&str>) -> RunOptions {
    RunOptions {
        timeseries: series.map(|s| parse_duration(s).unwrap()),
        ..RunOptions::new(
            seed,
            parse_duration(duration).unwrap(),
            parse_duration(warmup).unwrap(),
        )
    }
}

fn build(text: &str, o: &RunOptions) -> World {
    model(text)
        .build(o)
        .unwrap_or_else(|e| panic!("model does not build: {e:?}"))
}

fn run(text: &str, o: &RunOptions) -> RunReport {
    build(text, o)
        .run()
        .unwrap_or_else(|e| panic!("run failed: {e}"))
}

fn m(r: &RunReport, name: &str) -> f64 {
    r.metric(name)
        .unwrap_or_else(|| panic!("metric {name} is empty"))
}

/// The first time-series row at or after `t` seconds whose `f` holds.
fn first_row(series: &[SeriesRow], from: f64, f: impl Fn(&SeriesRow) -> bool) -> Option<f64> {
    series
        .iter()
        .filter(|r| r.t_s >= from)
        .find(|r| f(r))
        .map(|r| r.t_s)
}

// ---------------------------------------------------------------------------------------
// Validation

#[test]
fn compute_options_are_validated_with_paths() {
    let bad = &users_to_app(
        1,
        &[],
        r#"
service_time = "1ms"
shedding = "probabilistic(0.5)"
pool = { size = 0 }

[[queues]]
name = "jobs"
producer = "ap"
job_time = "1ms"

[[autoscalers]]
service = "nope"
metric = "cpu"
target = 2.0
min = 3
max = 2
"#,
    );
    let m: ModelConfig = dssim_lab::source::Source::from_text(Path::new("m.toml"), bad.into())
        .parse()
        .unwrap();
    let errs = m.validate().unwrap_err();
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "services.app.shedding",
        "services.app.pool.size",
        "queues.jobs.producer",
        "autoscalers.0.service",
        "autoscalers.0.max",
        "autoscalers.0.target",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    assert!(errs
        .iter()
        .any(|e| e.message.contains("did you mean \"app\"")));
}
