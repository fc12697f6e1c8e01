//! `dssim capacity`: the highest value of one numeric model path (a client's rate, say) at
//! which every service-level objective (SLO) still holds, or with [`Find::Min`] the lowest
//! value of a resource (instances, workers, cache capacity) at which they all hold.
//!
//! # Method
//!
//! A *probe* at value `v` runs the experiment with the path set to `v` for `R` replications
//! whose seeds are the same at every probe (common random numbers: the replication seeds of
//! `dssim run`), and takes, for each SLO, the mean of its metric over the replications and
//! the half-width of its 95% confidence interval (Student t, `R - 1` degrees of freedom).
//! The probe *passes* when every SLO holds for the mean.
//!
//! 1. **Bracketing.** Probe `lo`. In `max` mode it must pass (else the SLOs break below
//!    `lo`); the value then doubles until a probe fails, or `hi` is reached (when `hi` is
//!    given the last step probes `hi` itself; if `hi` passes the capacity is at least `hi`).
//!    `min` mode is the mirror image: `lo` must fail and the value doubles until it passes.
//! 2. **Bisection** between the last probe on `lo`'s side (`a`) and the first on the other
//!    side (`b`): real paths at the geometric midpoint, rounded to the fewest significant
//!    digits that keep it strictly inside, until `b / a - 1 <= tolerance`; integer paths
//!    (instances, replicas) at the integer midpoint until `b = a + 1`.
//! 3. **Result.** The capacity is the last passing probe (`a` in `max` mode, `b` in `min`
//!    mode). The SLOs that *broke first* are those failing at the failing end of the final
//!    bracket (`b` in `max` mode, `a` in `min` mode).
//! 4. **Confidence interval.** The bracket `[a, b]` only says where the *estimated* mean
//!    crosses its limit; the estimate itself is uncertain by the metric's 95% half-width
//!    `h`. Near the boundary the metric is locally linear in `v` with slope
//!    `s = (m(b) - m(a)) / (b - a)`; with common random numbers the errors at `a` and `b`
//!    are strongly correlated, so `s` is far more precise than either mean. An error `e` in
//!    the metric shifts the crossing by `e / s`, so the 95% interval of the capacity is
//!    `[a - h / |s|, b + h / |s|]`, with `h` the larger half-width at `a` and `b`, taken
//!    over the SLOs that broke first (the widest wins). Integer paths round outwards. With
//!    one replication (no half-width) the interval is the bracket itself.

use std::path::Path;

use dssim_components::{RunReport, RUN_COLUMNS};
use rayon::prelude::*;

use crate::error::{Diagnostic, LabError};
use crate::experiment::Experiment;
use crate::output::{csv_field, fmt_f64, mean_ci95};
use crate::runner::run_one;

/// Ratio metrics an SLO may use besides the columns of runs.csv (each over `requests`).
pub const RATIO_METRICS: &[(&str, &str)] = &[
    ("error_rate", "errors / requests"),
    ("timeout_rate", "timeouts / requests"),
    ("shed_rate", "shed / requests"),
    ("drop_rate", "dropped / requests"),
    ("failure_rate", "(requests - ok) / requests"),
];

/// A comparison in an SLO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// One service-level objective: `METRIC OP LIMIT`, e.g. `p99_ms<200`.
#[derive(Clone, Debug, PartialEq)]
pub struct Slo {
    /// A runs.csv column or one of [`RATIO_METRICS`].
    pub metric: String,
    /// The comparison.
    pub op: Op,
    /// The limit.
    pub limit: f64,
}

impl std::fmt::Display for Slo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.metric,
            self.op.text(),
            fmt_f64(self.limit)
        )
    }
}

fn slo_error(message: String, help: Option<String>) -> LabError {
    LabError::Input(Diagnostic {
        help,
        ..Diagnostic::plain(Path::new("--slo"), message)
    })
}

/// Metrics an SLO may name.
pub fn slo_metrics() -> Vec<&'static str> {
    RUN_COLUMNS
        .iter()
        .copied()
        .chain(RATIO_METRICS.iter().map(|m| m.0))
        .collect()
}

impl Slo {
    /// Parses `METRIC OP LIMIT` with OP one of `<`, `<=`, `>`, `>=` (spaces allowed).
    pub fn parse(text: &str) -> Result<Slo, LabError> {
        let t = text.trim();
        let Some(i) = t.find(['<', '>']) else {
            return Err(slo_error(
                format!(
                    "expected METRIC<LIMIT (or <=, >, >=), for example p99_ms<200; found {text:?}"
                ),
                None,
            ));
        };
        let metric = t[..i].trim().to_string();
        let rest = &t[i..];
        let (op, num) = if let Some(r) = rest.strip_prefix("<=") {
            (Op::Le, r)
        } else if let Some(r) = rest.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = rest.strip_prefix('<') {
            (Op::Lt, r)
        } else {
            (Op::Gt, &rest[1..])
        };
        let names = slo_metrics();
        if !names.contains(&metric.as_str()) {
            let help = dssim_components::did_you_mean(&metric, names.iter().copied())
                .map(|s| format!("did you mean `{s}`?"));
            return Err(slo_error(
                format!(
                    "unknown metric {metric:?} in SLO {text:?}: use a column of runs.csv ({}) or a ratio ({})",
                    RUN_COLUMNS.join(", "),
                    RATIO_METRICS
                        .iter()
                        .map(|(n, d)| format!("{n} = {d}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                help,
            ));
        }
        let limit: f64 = num
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                slo_error(
                    format!(
                        "the limit of SLO {text:?} is not a number: {:?}",
                        num.trim()
                    ),
                    None,
                )
            })?;
        Ok(Slo { metric, op, limit })
    }

    /// Whether `v` meets the objective.
    pub fn holds(&self, v: f64) -> bool {
        match self.op {
            Op::Lt => v < self.limit,
            Op::Le => v <= self.limit,
            Op::Gt => v > self.limit,
            Op::Ge => v >= self.limit,
        }
    }

    /// How far `v` is past the limit, relative to it (positive = violated).
    fn excess(&self, v: f64) -> f64 {
        let scale = self.limit.abs().max(1e-12);
        match self.op {
            Op::Lt | Op::Le => (v - self.limit) / scale,
            Op::Gt | Op::Ge => (self.limit - v) / scale,
        }
    }
}

/// The value of an SLO metric in one run (`None` when the run has no such figure, or a ratio
/// of a run with no requests).
pub fn metric_value(r: &RunReport, metric: &str) -> Option<f64> {
    let ratio = |num: Option<f64>| -> Option<f64> {
        let req = r.metric("requests")?;
        (req > 0.0).then(|| num.unwrap_or(0.0) / req)
    };
    match metric {
        "error_rate" => ratio(r.metric("errors")),
        "timeout_rate" => ratio(r.metric("timeouts")),
        "shed_rate" => ratio(r.metric("shed")),
        "drop_rate" => ratio(r.metric("dropped")),
        "failure_rate" => {
            let req = r.metric("requests")?;
            (req > 0.0).then(|| (req - r.metric("ok").unwrap_or(0.0)) / req)
        }
        m => r.metric(m),
    }
}

/// Which boundary to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Find {
    /// The highest value at which every SLO holds (a load: SLOs hold below it).
    Max,
    /// The lowest value at which every SLO holds (a resource: SLOs hold above it).
    Min,
}

/// How to search.
#[derive(Clone, Debug)]
pub struct CapacitySettings {
    /// The varied model path, e.g. `clients.users.rate`.
    pub path: String,
    /// The objectives; all must hold.
    pub slos: Vec<Slo>,
    /// Where the search starts [default: the path's value in the model].
    pub lo: Option<f64>,
    /// Upper end of the search [default: none, double until the outcome flips].
    pub hi: Option<f64>,
    /// Replications per probe.
    pub replications: u32,
    /// Relative width of the final bracket (real paths).
    pub tolerance: f64,
    /// Which boundary.
    pub find: Find,
    /// Worker threads for the replications of a probe.
    pub jobs: usize,
}

/// One probe: the path at one value, `replications` runs.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Order of the probe (0-based).
    pub index: usize,
    /// `bracket` or `bisect`.
    pub phase: &'static str,
    /// The value of the path.
    pub value: f64,
    /// The value as text (a whole number for integer paths).
    pub text: String,
    /// Per SLO: the mean of its metric over the replications.
    pub mean: Vec<Option<f64>>,
    /// Per SLO: the 95% half-width of that mean.
    pub ci95: Vec<Option<f64>>,
    /// Per SLO: whether it holds for the mean.
    pub holds: Vec<bool>,
    /// Whether every SLO holds.
    pub pass: bool,
    /// Events simulated by its runs.
    pub events: u64,
}

/// How the search ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The boundary lies between two probes.
    Found,
    /// The SLOs are already on the far side at `lo` (max: they break at `lo`; min: they hold
    /// at `lo`, so the capacity is `lo` or below).
    AtLo,
    /// The boundary was not reached by `hi` (or after the bracketing limit).
    BeyondHi,
}

/// The result of a capacity search.
#[derive(Clone, Debug)]
pub struct Capacity {
    /// Every probe, in order.
    pub probes: Vec<Probe>,
    /// Whether the path takes whole numbers.
    pub integer: bool,
    /// How it ended.
    pub outcome: Outcome,
    /// The capacity: the last passing value (max) or the first passing value (min), when any
    /// probe passed.
    pub capacity: Option<f64>,
    /// The final bracket `[a, b]` (a on `lo`'s side).
    pub bracket: Option<(f64, f64)>,
    /// The 95% confidence interval of the capacity (see the module doc).
    pub ci: Option<(f64, f64)>,
    /// Indices into the SLOs of those that broke first, most violated first.
    pub broke_first: Vec<usize>,
}

/// The most bracketing steps (doublings) before giving up.
const MAX_DOUBLINGS: usize = 40;

/// The value of `path` in the experiment's model, if it is a number.
pub fn current_value(exp: &Experiment, path: &str) -> Option<f64> {
    let spec = exp.spec(0).ok()?;
    let mut cur = serde_json::to_value(&spec.model).ok()?;
    for seg in path.strip_prefix("model.").unwrap_or(path).split('.') {
        cur = match cur {
            serde_json::Value::Object(mut m) => m.remove(seg)?,
            serde_json::Value::Array(items) => items
                .into_iter()
                .find(|it| it.get("name").and_then(|n| n.as_str()) == Some(seg))?,
            _ => return None,
        };
    }
    cur.as_f64()
}

fn input(message: String) -> LabError {
    LabError::Input(Diagnostic::plain(Path::new("capacity"), message))
}

/// The text of a probe value for `--set`.
fn value_text(v: f64, integer: bool) -> String {
    if integer {
        format!("{}", v as i64)
    } else {
        format!("{v:?}")
    }
}

/// The experiment with the path at `v` and the settings' replications.
fn at(
    exp: &Experiment,
    s: &CapacitySettings,
    v: f64,
    integer: bool,
) -> Result<Experiment, LabError> {
    let mut e = exp.clone();
    e.replications = s.replications;
    e.apply_cli_set(&format!("{}={}", s.path, value_text(v, integer)))?;
    e.spec(0)?;
    Ok(e)
}

/// `v` rounded to `digits` significant digits.
fn round_sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let p = digits - 1 - v.abs().log10().floor() as i32;
    let f = 10f64.powi(p);
    (v * f).round() / f
}

/// The next value to probe strictly between `a` and `b`, or `None` when the bracket is narrow
/// enough.
fn midpoint(a: f64, b: f64, integer: bool, tol: f64) -> Option<f64> {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    if integer {
        return (hi - lo > 1.0).then(|| ((lo + hi) / 2.0).floor());
    }
    if hi / lo - 1.0 <= tol {
        return None;
    }
    let g = (lo * hi).sqrt();
    (2..17)
        .map(|d| round_sig(g, d))
        .find(|m| *m > lo && *m < hi)
        .or(Some(g).filter(|m| *m > lo && *m < hi))
}

/// Runs the search. `on_probe` sees each probe as soon as it is done (for a live display).
pub fn search(
    exp: &Experiment,
    s: &CapacitySettings,
    on_probe: &mut dyn FnMut(&Probe),
) -> Result<Capacity, LabError> {
    if s.slos.is_empty() {
        return Err(slo_error(
            "give at least one --slo, for example --slo \"p99_ms<200\"".into(),
            None,
        ));
    }
    let path = s.path.strip_prefix("model.").unwrap_or(&s.path).to_string();
    if let Some((other, _)) = exp.sweep.iter().find(|(k, _)| *k != path) {
        return Err(input(format!(
            "the experiment sweeps {other:?}; capacity varies only {path:?}: pin the other with --set {other}=VALUE"
        )));
    }
    if !(s.tolerance > 0.0 && s.tolerance < 1.0) {
        return Err(input(format!(
            "--tolerance must be between 0 and 1 (a relative width such as 0.01), found {}",
            s.tolerance
        )));
    }
    if s.replications == 0 {
        return Err(input("--replications must be at least 1".into()));
    }
    let lo = match s.lo {
        Some(v) => v,
        None => current_value(exp, &path).ok_or_else(|| {
            // A bad path says so first; a good one without a value needs --lo.
            if let Err(e) = at(exp, s, 1.0, true) {
                return e;
            }
            input(format!(
                "{path:?} has no numeric value in the model to start from; give --lo"
            ))
        })?,
    };
    if !(lo.is_finite() && lo > 0.0) {
        return Err(input(format!(
            "the search starts at lo = {lo}; it must be a number above zero (give --lo)"
        )));
    }
    if let Some(hi) = s.hi {
        if !(hi.is_finite() && hi > lo) {
            return Err(input(format!("--hi ({hi}) must be above lo ({lo})")));
        }
    }
    // Integer path? A whole `lo` must be accepted; then try a fraction.
    let integer = if lo.fract() == 0.0 {
        at(exp, s, lo, true)?;
        at(exp, s, lo + 0.5, false).is_err()
    } else {
        at(exp, s, lo, false)?;
        false
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(s.jobs.max(1).min(s.replications as usize))
        .build()
        .map_err(|e| LabError::Run(format!("cannot start worker threads: {e}")))?;
    let mut probes: Vec<Probe> = Vec::new();
    let mut probe = |v: f64, phase: &'static str| -> Result<bool, LabError> {
        let e = at(exp, s, v, integer)?;
        let specs = (0..e.runs())
            .map(|r| e.spec(r))
            .collect::<Result<Vec<_>, _>>()?;
        let reports: Vec<Result<RunReport, String>> =
            pool.install(|| specs.par_iter().map(run_one).collect());
        let mut per_slo: Vec<Vec<f64>> = vec![Vec::new(); s.slos.len()];
        let mut events = 0u64;
        for (spec, r) in specs.iter().zip(reports) {
            let r = r.map_err(|m| {
                LabError::Run(format!(
                    "the run at {path} = {} (replication {}, seed {}) failed: {m}",
                    value_text(v, integer),
                    spec.replication,
                    spec.seed
                ))
            })?;
            events += r.metric("events").unwrap_or(0.0) as u64;
            for (i, slo) in s.slos.iter().enumerate() {
                if let Some(x) = metric_value(&r, &slo.metric).filter(|x| x.is_finite()) {
                    per_slo[i].push(x);
                }
            }
        }
        let mut p = Probe {
            index: probes.len(),
            phase,
            value: v,
            text: show(v, integer),
            mean: vec![],
            ci95: vec![],
            holds: vec![],
            pass: true,
            events,
        };
        for (slo, xs) in s.slos.iter().zip(&per_slo) {
            let (m, h) = mean_ci95(xs);
            let Some(m) = m else {
                return Err(input(format!(
                    "the model gives no value of {:?} (its runs.csv column is empty at {path} = {}); choose another SLO metric",
                    slo.metric,
                    value_text(v, integer)
                )));
            };
            let ok = slo.holds(m);
            p.mean.push(Some(m));
            p.ci95.push(h);
            p.holds.push(ok);
            p.pass &= ok;
        }
        on_probe(&p);
        let pass = p.pass;
        probes.push(p);
        Ok(pass)
    };

    // The outcome on lo's side: max mode passes there, min mode fails there.
    let near = s.find == Find::Max;
    let mut outcome = Outcome::Found;
    let mut bracket = None;
    if probe(lo, "bracket")? != near {
        outcome = Outcome::AtLo;
    } else {
        let mut a = lo;
        let mut steps = 0;
        loop {
            let mut next = a * 2.0;
            let at_hi = s.hi.is_some_and(|hi| next >= hi);
            if let Some(hi) = s.hi {
                next = next.min(hi);
            }
            if integer {
                next = next.floor();
            }
            if probe(next, "bracket")? != near {
                bracket = Some((a, next));
                break;
            }
            a = next;
            steps += 1;
            if at_hi || steps >= MAX_DOUBLINGS || next > 1e300 {
                outcome = Outcome::BeyondHi;
                break;
            }
        }
    }
    if let Some((mut a, mut b)) = bracket {
        while let Some(m) = midpoint(a, b, integer, s.tolerance) {
            if probe(m, "bisect")? == near {
                a = m;
            } else {
                b = m;
            }
        }
        bracket = Some((a, b));
    }

    let find = |v: f64| probes.iter().find(|p| p.value == v);
    let passing = |p: &&Probe| p.pass;
    let capacity = match (&outcome, bracket, s.find) {
        (Outcome::Found, Some((a, _)), Find::Max) => Some(a),
        (Outcome::Found, Some((_, b)), Find::Min) => Some(b),
        (Outcome::AtLo, _, Find::Min) => Some(lo),
        (Outcome::BeyondHi, _, Find::Max) => probes
            .iter()
            .filter(passing)
            .map(|p| p.value)
            .reduce(f64::max),
        _ => None,
    };
    let mut broke_first = Vec::new();
    let mut ci = None;
    if let Some((a, b)) = bracket {
        let (pa, pb) = (find(a), find(b));
        if let (Some(pa), Some(pb)) = (pa, pb) {
            let failing = if s.find == Find::Max { pb } else { pa };
            let mut idx: Vec<usize> = (0..s.slos.len()).filter(|&i| !failing.holds[i]).collect();
            idx.sort_by(|&i, &j| {
                let ei = s.slos[i].excess(failing.mean[i].unwrap_or(0.0));
                let ej = s.slos[j].excess(failing.mean[j].unwrap_or(0.0));
                ej.total_cmp(&ei)
            });
            let mut widen: f64 = 0.0;
            let mut known = true;
            for &i in &idx {
                let (ma, mb) = (pa.mean[i].unwrap_or(0.0), pb.mean[i].unwrap_or(0.0));
                let h = match (pa.ci95[i], pb.ci95[i]) {
                    (Some(x), Some(y)) => x.max(y),
                    _ => 0.0,
                };
                let slope = (mb - ma) / (b - a);
                if h == 0.0 {
                    continue;
                }
                if slope.is_finite() && slope != 0.0 {
                    widen = widen.max(h / slope.abs());
                } else {
                    known = false;
                }
            }
            if known {
                let (mut l, mut u) = ((a - widen).max(0.0), b + widen);
                if integer {
                    l = l.floor();
                    u = u.ceil();
                }
                ci = Some((l, u));
            }
            broke_first = idx;
        }
    }
    Ok(Capacity {
        probes,
        integer,
        outcome,
        capacity,
        bracket,
        ci,
        broke_first,
    })
}

/// Writes `capacity.csv`: one row per probe with the value, whether every SLO held, and per
/// SLO its metric's mean, 95% half-width and whether it held.
pub fn write_csv(dir: &Path, s: &CapacitySettings, c: &Capacity) -> Result<(), LabError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| LabError::io(dir, format!("cannot create the output folder: {e}")))?;
    let mut out = format!("probe,phase,{},replications,pass", csv_field(&s.path));
    for slo in &s.slos {
        let t = csv_field(&slo.to_string());
        out.push_str(&format!(",{},{}_ci95,{t}", slo.metric, slo.metric));
    }
    out.push_str(",events\n");
    for p in &c.probes {
        out.push_str(&format!(
            "{},{},{},{},{}",
            p.index,
            p.phase,
            if c.integer {
                value_text(p.value, true)
            } else {
                fmt_f64(p.value)
            },
            s.replications,
            p.pass
        ));
        for i in 0..s.slos.len() {
            out.push_str(&format!(
                ",{},{},{}",
                p.mean[i].map(fmt_f64).unwrap_or_default(),
                p.ci95[i].map(fmt_f64).unwrap_or_default(),
                p.holds[i]
            ));
        }
        out.push_str(&format!(",{}\n", p.events));
    }
    let path = dir.join("capacity.csv");
    std::fs::write(&path, out).map_err(|e| LabError::io(&path, e))
}

/// The text of a value of the varied path, for display.
pub fn show(v: f64, integer: bool) -> String {
    if integer {
        format!("{}", v as i64)
    } else {
        fmt_f64(round_sig(v, 6))
    }
}

/// High availability over zones: with the fleet spread evenly over `zones` zones, losing one
/// leaves `(zones - 1) / zones` of it, so the fleet must be `zones / (zones - 1)` times
/// what the load needs (3 zones: ×1.5, the lecture's "with HA (3 AZ): 72 × 1.5").
pub fn ha_factor(zones: u32) -> f64 {
    if zones <= 1 {
        1.0
    } else {
        f64::from(zones) / f64::from(zones - 1)
    }
}

/// A resource need multiplied by the HA factor: rounded up for whole-number paths
/// (instances), as is for real ones.
pub fn with_ha(need: f64, factor: f64, integer: bool) -> f64 {
    let v = need * factor;
    if integer {
        // 1e-9: 14 × 1.5 is 21 exactly, not 22 through a rounding error.
        (v - 1e-9).ceil()
    } else {
        v
    }
}

/// The load a fleet still carries after losing one zone: its capacity over the HA factor.
pub fn load_after_zone_loss(capacity: f64, factor: f64) -> f64 {
    capacity / factor
}

/// The storage to provision (the lecture's storage-growth plan): today's data plus the
/// monthly growth over the horizon, times the copies backups keep (30-day retention
/// roughly doubles it), times the replication factor (every replica holds everything).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoragePlan {
    /// Data stored today, GB.
    pub current_gb: f64,
    /// Growth per month, GB.
    pub monthly_gb: f64,
    /// Planning horizon, months.
    pub months: f64,
    /// Multiplier for backups (2: a full copy kept over the retention window).
    pub backups: f64,
    /// Copies of the data (3: a primary and two replicas).
    pub replication: f64,
}

impl StoragePlan {
    /// The data itself at the horizon.
    pub fn projected_gb(&self) -> f64 {
        self.current_gb + self.monthly_gb * self.months
    }

    /// With the backups.
    pub fn with_backups_gb(&self) -> f64 {
        self.projected_gb() * self.backups
    }

    /// With the backups and every replica: the disk to buy.
    pub fn total_gb(&self) -> f64 {
        self.with_backups_gb() * self.replication
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_lectures_ha_and_storage_multipliers() {
        // "72 cores; with HA (3 AZ): 72 × 1.5 = 108".
        assert_eq!(ha_factor(3), 1.5);
        assert_eq!(ha_factor(2), 2.0);
        assert_eq!(ha_factor(1), 1.0);
        assert_eq!(with_ha(72.0, ha_factor(3), true), 108.0);
        assert_eq!(with_ha(14.0, 1.5, true), 21.0);
        assert_eq!(with_ha(15.0, 1.5, true), 23.0);
        assert_eq!(load_after_zone_loss(9000.0, 1.5), 6000.0);
        // "500 + 50 × 12 = 1,100 GB; with backups × 2 = 2,200; with replication × 3 = 6,600".
        let p = StoragePlan {
            current_gb: 500.0,
            monthly_gb: 50.0,
            months: 12.0,
            backups: 2.0,
            replication: 3.0,
        };
        assert_eq!(p.projected_gb(), 1100.0);
        assert_eq!(p.with_backups_gb(), 2200.0);
        assert_eq!(p.total_gb(), 6600.0);
    }

    use super::*;

    #[test]
    fn parses_slos() {
        let s = Slo::parse("p99_ms<200").unwrap();
        assert_eq!(
            (s.metric.as_str(), s.op, s.limit),
            ("p99_ms", Op::Lt, 200.0)
        );
        let s = Slo::parse(" error_rate <= 0.001 ").unwrap();
        assert_eq!(
            (s.metric.as_str(), s.op, s.limit),
            ("error_rate", Op::Le, 0.001)
        );
        let s = Slo::parse("availability>=0.999").unwrap();
        assert_eq!(s.op, Op::Ge);
        assert!(s.holds(0.999) && !s.holds(0.99));
        assert_eq!(Slo::parse("throughput_rps>5").unwrap().op, Op::Gt);
        for bad in [
            "p99_ms",
            "p99<200",
            "p99_ms<abc",
            "p99_ms<",
            "<3",
            "p99_ms<inf",
        ] {
            let e = Slo::parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        let e = Slo::parse("p99_mss<3").unwrap_err().to_string();
        assert!(e.contains("did you mean `p99_ms`"), "{e}");
    }

    #[test]
    fn midpoints_stay_inside_and_stop() {
        assert_eq!(midpoint(100.0, 200.0, false, 0.01), Some(140.0));
        assert_eq!(midpoint(100.0, 100.9, false, 0.01), None);
        let m = midpoint(163.0, 165.0, false, 0.01).unwrap();
        assert!(m > 163.0 && m < 165.0);
        assert_eq!(midpoint(2.0, 4.0, true, 0.01), Some(3.0));
        assert_eq!(midpoint(3.0, 4.0, true, 0.01), None);
    }
}
