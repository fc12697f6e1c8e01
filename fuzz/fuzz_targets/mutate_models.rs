//! Structure-aware: take a real model or experiment from the repository and apply a list of
//! `--set`-style edits with hostile values (zero, negative, NaN, huge, wrong types, unknown
//! names, odd distributions), then resolve, validate, build and run briefly.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const PATHS: &[&str] = &[
    "clients.users.rate", "clients.users.users", "clients.users.think", "clients.users.timeout",
    "clients.users.read_ratio", "clients.users.keys", "clients.users.popularity", "clients.users.target",
    "clients.users.arrival", "clients.users.user_ids", "services.api.workers", "services.api.instances",
    "services.api.queue", "services.api.service_time", "services.api.speed", "services.server.workers",
    "services.server.service_time", "services.server.queue", "network.latency", "network.loss",
    "duration", "warmup", "replications", "seed",
];

const STRINGS: &[&str] = &[
    "exp(5ms)", "exp(0ms)", "uniform(9ms, 1ms)", "normal(1ms, 100s)", "lognormal(0ms, 1ms)",
    "erlang(0, 1ms)", "pareto(1ms, 0.5)", "hyperexp(2, 1ms, 1ms)", "const(1h)", "5", "-1ms", "",
    "zipf(-1)", "zipf(0.99)", "hotspot(2, 0.5)", "closed", "poisson", "steps", "nope", "api", "server",
    "1e400ms", "NaNms", "9999999999999h",
];

#[derive(Arbitrary, Debug)]
enum Val {
    Int(i64),
    Float(f64),
    Str(u8),
    Bool(bool),
    Empty,
}

#[derive(Arbitrary, Debug)]
struct Input {
    base: u8,
    edits: Vec<(u8, Val)>,
}

fuzz_target!(|input: Input| {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<std::path::PathBuf> = ["models", "experiments"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).into_iter().flatten().flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return;
    }
    let file = &files[input.base as usize % files.len()];
    let Ok(mut text) = std::fs::read_to_string(file) else { return };
    // Apply the edits as a [set] table appended to an experiment, or as --set on a model.
    let mut set = String::new();
    for (p, v) in input.edits.iter().take(6) {
        let path = PATHS[*p as usize % PATHS.len()];
        let value = match v {
            Val::Int(i) => i.to_string(),
            Val::Float(f) => format!("{f:?}").replace("inf", "inf").replace("NaN", "nan"),
            Val::Str(s) => format!("{:?}", STRINGS[*s as usize % STRINGS.len()]),
            Val::Bool(b) => b.to_string(),
            Val::Empty => "[]".to_string(),
        };
        set.push_str(&format!("{path:?} = {value}\n"));
    }
    let is_experiment = text.contains("duration") || text.contains("model =") || text.contains("[model]");
    if is_experiment && !text.contains("\n[set]") {
        text.push_str("\n[set]\n");
        text.push_str(&set);
    }
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("x.toml").to_string();
    common::exercise(&name, text);
});
