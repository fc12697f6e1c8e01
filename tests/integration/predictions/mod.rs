//! Predictions against the simulation: `dssim estimate` and the predicted columns of
//! components.csv come from one model of the request path (`dssim_lab::estimate`); here
//! they meet the runs they predict.
//!
//! - an LRU cache under Zipf keys (Che's approximation, keys grouped on the estimate's
//!   grid): the measured hit ratio within 4 standard errors plus Che's own error;
//! - a database behind a pool of c connections (M/M/c) and one refusing past
//!   `max_connections` (Erlang's loss system M/M/c/c): predicted and measured
//!   components.csv columns within 4 standard errors (these formulas are exact);
//! - the database-bottleneck lesson: the estimate names the app while it saturates first
//!   and the database once more app nodes push it past its peak, and the closed loop's
//!   throughput lands near the simulated one;
//! - components.csv: every column present, predictions empty (never zero) where none
//!   applies; every shipped file estimates without a NaN.
//!
//! Tolerances: per-replication figures are independent (distinct seeds), so
//! (mean − prediction) / se follows Student's t; [`SIGMAS`] standard errors, plus the
//! approximation's own stated error where the prediction is an approximation.
//!
//! Files: `databases` (M/M/c, M/M/c/c, the bottleneck, cores, group commit), `exact` (the LRU
//! cache and the exact cases), `outputs` (components.csv, shipped files, `--explain`).

mod databases;
mod exact;
mod outputs;

use dssim_components::{ComponentRow, RunReport};

use crate::support::{self, mean_se, num, Row, SIGMAS};

/// Asserts that per-replication measurements `xs` agree with `predicted` within SIGMAS
/// standard errors plus `approx` (relative to the prediction), and that the band is
/// narrow enough to mean something (`max_rel` of the prediction).
fn agrees(what: &str, xs: &[f64], predicted: f64, approx: f64, max_rel: f64) {
    let (mean, se) = mean_se(xs);
    let band = SIGMAS * se + approx * predicted.abs();
    eprintln!(
        "{what}: measured {mean:.5} (se {se:.5}), predicted {predicted:.5}, rel. error {:+.2}%, band ±{:.2}%",
        100.0 * (mean - predicted) / predicted,
        100.0 * band / predicted.abs()
    );
    assert!(
        band <= max_rel * predicted.abs(),
        "{what}: band {band} wider than {max_rel} of {predicted}: the check would be vacuous"
    );
    assert!(
        (mean - predicted).abs() <= band,
        "{what}: measured {mean} (se {se}) vs predicted {predicted}: off by more than the band {band}; runs {xs:?}"
    );
}

/// Per run, the figure `f` of `component`'s row (present in every run).
fn column(
    reports: &[RunReport],
    component: &str,
    f: &dyn Fn(&ComponentRow) -> Option<f64>,
) -> Vec<f64> {
    reports
        .iter()
        .map(|r| f(support::component(r, component)).unwrap())
        .collect()
}

/// The rows of `component` in components.csv, one per run.
fn rows<'a>(all: &'a [Row], component: &str) -> Vec<&'a Row> {
    let v: Vec<&Row> = all.iter().filter(|r| r["component"] == component).collect();
    assert!(!v.is_empty(), "no components.csv rows for {component}");
    v
}

/// The measured column `col` per run, and the predicted one (the same in every run).
fn measured_and_predicted(all: &[Row], component: &str, col: &str) -> (Vec<f64>, f64) {
    let rs = rows(all, component);
    let xs = rs.iter().map(|r| num(r, col)).collect();
    let p = num(rs[0], &format!("predicted_{col}"));
    assert!(rs.iter().all(|r| num(r, &format!("predicted_{col}")) == p));
    (xs, p)
}
