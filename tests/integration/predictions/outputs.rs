//! The predictions as users read them: components.csv's predicted columns, every shipped
//! file's estimate, and `dssim estimate --explain`.

use std::path::Path;

use super::rows;
use crate::support::{self, num, read_csv, run_ok, tmp_dir, write, Row};

#[test]
fn components_csv_has_predictions_and_leaves_the_rest_empty() {
    let dir = tmp_dir("pred-columns");
    let file = write(
        &dir,
        "x.toml",
        r#"
        name = "columns"
        duration = "4s"
        warmup = "1s"
        seed = 3
        replications = 1

        [model]
        [[model.clients]]
        name = "users"
        target = "edge"
        rate = 300
        keys = 5000
        popularity = "zipf(0.9)"
        read_ratio = 0.9

        [[model.caches]]
        name = "edge"
        tier = "cdn"
        origin = "app"
        cacheable = 0.5
        capacity = 500

        [[model.services]]
        name = "app"
        instances = 2
        workers = 8
        service_time = "exp(2ms)"
        database = "db"

        [[model.databases]]
        name = "db"
        read_time = "exp(1ms)"
        write_time = "exp(2ms)"
        replicas = 1
        read_from = "replicas"
        "#,
    );
    let out = dir.join("out");
    run_ok(&file, &out, &[]);
    let (header, _) = crate::support::read_table(&out.join("components.csv"));
    for c in [
        "run",
        "component",
        "kind",
        "requests",
        "utilization",
        "mean_queue",
        "p99_ms",
        "hit_ratio",
        "rps",
        "mean_ms",
        "predicted_rps",
        "predicted_utilization",
        "predicted_mean_queue",
        "predicted_mean_ms",
        "predicted_hit_ratio",
    ] {
        assert!(
            header.iter().any(|h| h == c),
            "components.csv lacks {c}: {header:?}"
        );
    }
    let all = read_csv(&out.join("components.csv"));
    let row = |name: &str| rows(&all, name)[0].clone();
    let empty = |r: &Row, col: &str| {
        assert!(
            r[col].is_empty(),
            "{} {col} should be empty, is {:?}",
            r["component"],
            r[col]
        );
    };
    let filled = |r: &Row, col: &str| {
        let v = num(r, col);
        assert!(v.is_finite() && v >= 0.0, "{} {col} = {v}", r["component"]);
    };
    // A service: no hit ratio, predicted or measured.
    let app = row("app");
    for col in [
        "predicted_rps",
        "predicted_utilization",
        "predicted_mean_ms",
        "predicted_mean_queue",
    ] {
        filled(&app, col);
    }
    empty(&app, "predicted_hit_ratio");
    empty(&app, "hit_ratio");
    // An edge: a hit ratio, no utilization (no max_ops).
    let edge = row("edge");
    filled(&edge, "predicted_hit_ratio");
    empty(&edge, "predicted_utilization");
    empty(&edge, "utilization");
    // The origin row: requests and offload only.
    let origin = row("edge.origin");
    filled(&origin, "predicted_rps");
    filled(&origin, "predicted_hit_ratio");
    for col in [
        "predicted_utilization",
        "predicted_mean_ms",
        "predicted_mean_queue",
        "mean_ms",
    ] {
        empty(&origin, col);
    }
    // Database nodes without max_connections: no utilization either way; no buffer pool:
    // no hit ratio.
    for name in ["db.primary", "db.replica.0"] {
        let r = row(name);
        filled(&r, "predicted_mean_ms");
        empty(&r, "predicted_utilization");
        empty(&r, "utilization");
        empty(&r, "predicted_hit_ratio");
    }
    // Writes go to the primary, reads to the replica.
    assert!(
        num(&row("db.replica.0"), "predicted_rps") > 4.0 * num(&row("db.primary"), "predicted_rps")
    );
}

#[test]
fn every_shipped_file_estimates_without_nan() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for folder in ["models", "experiments"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(folder))
            .expect("list folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in files {
            let o = support::dssim_within(&["estimate", f.to_str().expect("utf-8")], 20);
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                o.status.success(),
                "{}: {}",
                f.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(
                !text.contains("NaN") && !text.contains("inf"),
                "{}:\n{text}",
                f.display()
            );
            n += 1;
        }
    }
    assert!(n > 40, "only {n} files");
}

/// The line of `dssim estimate --explain`'s explanation (the part after the table, from its
/// own header on) that starts with `start`.
fn explained_line(text: &str, start: &str) -> String {
    text.lines()
        .skip_while(|l| !(l.starts_with("component") && l.ends_with("method")))
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no {start:?} line in\n{text}"))
        .to_string()
}

/// `dssim estimate --explain` names the formula behind every row and client; without the
/// flag the table is as before.
#[test]
fn estimate_explain_names_each_formula() {
    let dir = tmp_dir("explain");
    write(
        &dir,
        "m.toml",
        "[[clients]]\nname='users'\ntarget='app'\narrival='closed'\nusers=9\nthink='exp(40ms)'\n[[clients]]\nname='web'\ntarget='api'\nrate=270\n[[services]]\nname='app'\nservice_time='exp(5ms)'\n[[services]]\nname='api'\nworkers=3\nqueue=5\nservice_time='exp(10ms)'\n",
    );
    let text = crate::support::dssim_ok(&dir, &["estimate", "--explain", "m.toml"]);
    let line = |start: &str| explained_line(&text, start);
    assert!(line("app ").contains("exact MVA"), "{text}");
    assert!(line("api ").contains("M/M/c/K"), "{text}");
    assert!(line("client users").contains("exact MVA"), "{text}");
    assert!(line("client web").contains("open"), "{text}");
    let plain = crate::support::dssim_ok(&dir, &["estimate", "m.toml"]);
    assert!(!plain.contains("method"), "{plain}");
    // What the simulator added last: a connection per request without a pool, a disk's
    // IOPS limit, priority classes of a job queue.
    write(
        &dir,
        "n.toml",
        "[[clients]]\nname='users'\ntarget='app'\nrate=100\nread_ratio=0.5\n\
         [[services]]\nname='app'\nservice_time='exp(1ms)'\nconnect_time='exp(20ms)'\ndatabase='db'\n\
         [[databases]]\nname='db'\nread_time='exp(1ms)'\nwrite_time='exp(1ms)'\n\
         buffer_pool={pages=10, disk_read='1ms', iops=500}\n\
         [[queues]]\nname='jobs'\nproducer='app'\njob_time='exp(4ms)'\n\
         priorities=[{name='high', share=0.25}, {name='low', share=0.75}]\n",
    );
    let text = crate::support::dssim_ok(&dir, &["estimate", "--explain", "n.toml"]);
    let line = |start: &str| explained_line(&text, start);
    assert!(line("app ").contains("connect_time"), "{text}");
    assert!(line("db.primary ").contains("M/D/1"), "{text}");
    assert!(line("jobs.high ").contains("Cobham"), "{text}");
    assert!(line("jobs.low ").contains("class 2 of 2"), "{text}");
}
