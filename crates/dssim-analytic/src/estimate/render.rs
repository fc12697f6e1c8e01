//! The text `dssim estimate` prints, and its `--explain` list of methods.

use dssim_components::ModelConfig;

use super::{ComponentEstimate, ModelEstimate};

/// A number for the estimate table: `-` when absent, `∞` when unbounded, `saturated` for
/// a wait or time that grows without bound.
fn show(v: Option<f64>, prec: usize, unbounded: &str) -> String {
    match v {
        None => "-".to_string(),
        Some(x) if x.is_infinite() => unbounded.to_string(),
        Some(x) if x.is_nan() => "-".to_string(),
        Some(x) => format!("{x:.prec$}"),
    }
}

/// A time column: the figure, `saturated` where a queue grows without bound, `-` where
/// the component has no such time.
fn timing(e: &ComponentEstimate, v: Option<f64>) -> String {
    let queues = matches!(e.kind, "service" | "pool" | "queue" | "database");
    match v {
        Some(x) if x.is_finite() => format!("{x:.3}"),
        _ if queues && e.sojourn_ms.is_none() => "saturated".to_string(),
        _ => "-".to_string(),
    }
}

/// Database nodes listed one by one; past this, only the hottest shard's.
const NODES_LISTED: usize = 12;

/// The text `dssim estimate FILE` prints: one row per component, the clients, resharding
/// costs and the first bottleneck.
pub fn render(model: &ModelConfig, est: &ModelEstimate) -> String {
    use std::fmt::Write as _;
    let mut rows: Vec<&ComponentEstimate> = Vec::new();
    let mut notes = Vec::new();
    for c in &est.components {
        if c.kind != "database" {
            rows.push(c);
        }
    }
    for d in &model.databases {
        let nodes: Vec<&ComponentEstimate> = est
            .components
            .iter()
            .filter(|c| {
                c.kind == "database"
                    && (c.component.starts_with(&format!("{}.", d.name)))
                    && c.component[d.name.len() + 1..]
                        .split('.')
                        .next()
                        .is_some_and(|w| w == "primary" || w == "replica" || w == "shard")
            })
            .collect();
        if nodes.len() <= NODES_LISTED || d.shards <= 1 {
            rows.extend(nodes);
            continue;
        }
        // The hottest shard: the busiest primary.
        let primaries: Vec<&&ComponentEstimate> = nodes
            .iter()
            .filter(|c| c.component.ends_with(".primary"))
            .collect();
        let hot = primaries
            .iter()
            .max_by(|a, b| a.offered_rps.total_cmp(&b.offered_rps))
            .map(|c| c.component.trim_end_matches(".primary").to_string())
            .unwrap_or_default();
        rows.extend(
            nodes
                .iter()
                .filter(|c| c.component.starts_with(&format!("{hot}."))),
        );
        let lo = primaries
            .iter()
            .map(|c| c.offered_rps)
            .fold(f64::INFINITY, f64::min);
        let hi = primaries.iter().map(|c| c.offered_rps).fold(0.0, f64::max);
        notes.push(format!(
            "database {}: {} shards; only the hottest ({hot}) is listed: primaries take {lo:.1} to {hi:.1} rps",
            d.name, d.shards
        ));
    }
    notes.extend(calls_notes(model));
    let width = rows
        .iter()
        .map(|c| c.component.chars().count())
        .max()
        .unwrap_or(0)
        .max(16);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$} {:<13} {:>12} {:>8} {:>8} {:>12} {:>12} {:>9} {:>14} {:>9}",
        "component",
        "kind",
        "offered_rps",
        "servers",
        "util",
        "wait_ms",
        "sojourn_ms",
        "hit",
        "saturates_at",
        "headroom"
    );
    for e in &rows {
        let _ = writeln!(
            out,
            "{:<width$} {:<13} {:>12.1} {:>8} {:>8} {:>12} {:>12} {:>9} {:>14} {:>9}",
            e.component,
            e.kind,
            e.offered_rps,
            e.servers.map_or("∞".to_string(), |s| s.to_string()),
            show(e.utilization, 3, "∞"),
            timing(e, e.wait_ms),
            timing(e, e.sojourn_ms),
            show(e.hit_ratio, 3, "-"),
            show(Some(e.saturation_rps), 1, "∞"),
            if e.headroom().is_finite() {
                format!("{:.2}x", e.headroom())
            } else {
                "∞".to_string()
            },
        );
    }
    for c in &est.clients {
        let resp = show(c.response_ms, 3, "saturated");
        match &c.closed {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "client {}: closed loop of {} users thinking {:.1} ms settles at {:.1} rps, response {resp} ms (with no queueing they would send {:.1} rps)",
                    c.name, l.users, l.think_ms, c.rate_rps, l.unloaded_rps
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "client {}: {:.1} rps, response {resp} ms",
                    c.name, c.rate_rps
                );
            }
        }
    }
    for n in notes {
        let _ = writeln!(out, "{n}");
    }
    // Resharding: the share of keys that move when one shard is added.
    let keys = model
        .clients
        .iter()
        .map(|c| c.keys)
        .max()
        .unwrap_or(1)
        .min(200_000);
    for d in &model.databases {
        use dssim_components::database::{moved_fraction, Sharding};
        // Only where sharding is in play: several shards, or a strategy chosen.
        if d.shards <= 1 && d.sharding == Sharding::Hash {
            continue;
        }
        let (n, m) = (d.shards, d.shards.saturating_add(1));
        let f = |s: Sharding| moved_fraction(s, keys, n, m);
        let _ = writeln!(
            out,
            "database {}: adding a shard ({n} -> {m}) moves {:.1}% of {keys} keys with its sharding ({}); hash mod N {:.1}%, consistent hashing {:.1}% (ideal 1/(N+1) = {:.1}%)",
            d.name,
            100.0 * f(d.sharding),
            serde_json::to_value(d.sharding)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            100.0 * f(Sharding::Hash),
            100.0 * f(Sharding::ConsistentHash),
            100.0 / f64::from(m)
        );
    }
    for d in &model.databases {
        let _ = shard_key_note(model, d, &mut out);
    }
    if let Some(b) = est.first_bottleneck() {
        let h = b.headroom();
        let _ = writeln!(
            out,
            "first bottleneck: {} ({}), saturates at {:.1} rps{}",
            b.component,
            b.kind,
            b.saturation_rps,
            if h < 1.0 {
                " — already overloaded at the offered load".to_string()
            } else {
                format!(
                    ", {h:.2}x its load today (clients at {:.1} rps)",
                    est.client_rps() * h
                )
            }
        );
    }
    out
}

/// The text `dssim estimate --explain` adds: the formula behind each component's figures
/// and each client's rate.
pub fn render_explain(est: &ModelEstimate) -> String {
    use std::fmt::Write as _;
    let width = est
        .components
        .iter()
        .map(|c| c.component.chars().count())
        .chain(est.clients.iter().map(|c| c.name.chars().count() + 7))
        .max()
        .unwrap_or(0)
        .max(16);
    let mut out = String::new();
    let _ = writeln!(out, "{:<width$} method", "component");
    for c in &est.components {
        let _ = writeln!(out, "{:<width$} {}", c.component, c.method);
    }
    for c in &est.clients {
        let _ = writeln!(out, "{:<width$} {}", format!("client {}", c.name), c.method);
    }
    out
}

/// How the estimate takes a model's service-to-service calls, and what it leaves out of
/// them and of circuit breakers, said where its figures are printed (`dssim estimate`,
/// with `--explain` too).
pub fn calls_notes(model: &ModelConfig) -> Vec<String> {
    let mut notes = Vec::new();
    for s in model.services.iter().filter(|s| !s.calls.is_empty()) {
        notes.push(format!(
            "services.{}.calls: each callee takes the caller's rate × count (of the call's op); \
             the caller's time (and its workers' holding time) adds its calls: entries in \
             sequence add up, a parallel stage waits for its slowest call — E[max] = \
             ∫(1 − ∏F_i(t))dt, each call's time taken as exponential of the callee's predicted \
             mean (H_N × mean for N alike), capped at its timeout. Left out: failed, timed-out \
             and bulkhead-refused calls (a bulkhead of c that refuses without waiting refuses \
             Erlang B(c, calls/s × mean call time) of its calls)",
            s.name
        ));
    }
    if !model.circuit_breakers.is_empty() {
        notes.push(
            "circuit_breakers: not in this estimate (a closed breaker adds no time; an open one \
             answers at once)"
                .to_string(),
        );
    }
    notes
}

/// The shard key's load split and the cross-shard queries' cost, for a database that has
/// them: the busiest shard's share; a cross-shard query's extra load and its time, the max
/// over the shards it asks (H_k × the mean read time for exponential reads, plus the
/// farthest round trip between the shards' regions).
fn shard_key_note(
    model: &ModelConfig,
    d: &dssim_components::database::DatabaseConfig,
    out: &mut String,
) -> std::fmt::Result {
    use std::fmt::Write as _;
    if let Some(split) = super::flow::shard_key_split(model, d) {
        let (hot, share) =
            split
                .iter()
                .enumerate()
                .fold((0, 0.0), |a, (s, &x)| if x > a.1 { (s, x) } else { a });
        writeln!(
            out,
            "database {}: shard by {}: the busiest shard ({hot}) takes {:.1}% of the queries (an even split: {:.1}%)",
            d.name,
            serde_json::to_value(d.shard_by)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            100.0 * share,
            100.0 / f64::from(d.shards.max(1))
        )?;
    }
    let Some(c) = d.cross_shard.filter(|c| c.share > 0.0 && d.shards > 1) else {
        return Ok(());
    };
    let k = c.shards.unwrap_or(d.shards).clamp(2, d.shards);
    let h: f64 = (1..=k).map(|i| 1.0 / f64::from(i)).sum();
    let s_ms = d.read_time.0.mean() / 1e6;
    let mut rtt: f64 = 0.0;
    for a in &d.shard_regions {
        for b in &d.shard_regions {
            let key = |x: &str, y: &str| format!("{x}:{y}");
            let lat = model
                .network
                .regions
                .get(&key(a, b))
                .or_else(|| model.network.regions.get(&key(b, a)))
                .filter(|_| a != b)
                .or(model.network.latency.as_ref())
                .map_or(0.0, |l| l.0.mean() / 1e6);
            rtt = rtt.max(2.0 * lat);
        }
    }
    writeln!(
        out,
        "database {}: {:.0}% of reads ask {k} shards: the shards serve {:.2}x the reads of single-shard queries (1 - c + c k), and such a query waits for the slowest: about H_{k} x {s_ms:.2} ms = {:.2} ms with exponential reads (without queueing){}",
        d.name,
        100.0 * c.share,
        1.0 - c.share + c.share * f64::from(k),
        h * s_ms,
        if rtt > 0.0 {
            format!(", plus up to {rtt:.1} ms for the farthest shard's round trip")
        } else {
            String::new()
        }
    )
}
