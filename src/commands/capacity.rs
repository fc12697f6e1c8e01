//! `dssim capacity`: the search for the highest load (or lowest resource) that meets
//! every SLO.

use std::path::{Path, PathBuf};

use dssim_lab::LabError;

use super::{jobs_or_cores, load};
use crate::args::{CapacityArgs, FindArg, SweepArgs};

/// Searches, printing one line per probe, then the verdict; writes capacity.csv.
pub(crate) fn execute(args: CapacityArgs) -> Result<u8, LabError> {
    let CapacityArgs {
        file,
        slo,
        vary,
        lo,
        hi,
        replications,
        tolerance,
        find,
        zones,
        out,
        sweep: SweepArgs { jobs, seed, set },
    } = args;
    capacity(
        &file,
        &set,
        seed,
        zones,
        dssim_lab::capacity::CapacitySettings {
            path: vary,
            slos: slo
                .iter()
                .map(|s| dssim_lab::capacity::Slo::parse(s))
                .collect::<Result<_, _>>()?,
            lo,
            hi,
            replications,
            tolerance,
            find: match find {
                FindArg::Max => dssim_lab::capacity::Find::Max,
                FindArg::Min => dssim_lab::capacity::Find::Min,
            },
            jobs: jobs_or_cores(jobs),
        },
        out,
    )
}

/// `dssim capacity`: the search, one line per probe, the verdict and capacity.csv.
fn capacity(
    file: &Path,
    set: &[String],
    seed: Option<u64>,
    zones: Option<u32>,
    settings: dssim_lab::capacity::CapacitySettings,
    out: Option<PathBuf>,
) -> Result<u8, LabError> {
    use dssim_lab::capacity::{self as cap, Find, Outcome};
    let exp = load(file, set, seed)?;
    let out =
        out.unwrap_or_else(|| PathBuf::from("results").join(format!("{}-capacity", exp.name)));
    for s in &settings.slos {
        if matches!(
            s.metric.as_str(),
            "errors" | "timeouts" | "shed" | "dropped"
        ) {
            eprintln!(
                "note: {} is a count per run; for a fraction of requests use {}_rate",
                s.metric,
                match s.metric.as_str() {
                    "errors" => "error",
                    "timeouts" => "timeout",
                    "dropped" => "drop",
                    _ => "shed",
                }
            );
        }
    }
    let started = std::time::Instant::now();
    let path = settings.path.clone();
    let slos = settings.slos.clone();
    let result = cap::search(&exp, &settings, &mut |p| {
        let figures: Vec<String> = slos
            .iter()
            .zip(p.mean.iter().zip(&p.ci95))
            .map(|(s, (m, h))| {
                let m = m.map_or("-".into(), |m| format!("{m:.4}"));
                match h {
                    Some(h) => format!("{} {m} ± {h:.3}", s.metric),
                    None => format!("{} {m}", s.metric),
                }
            })
            .collect();
        say!(
            "probe {:>2} {:<7} {path} = {:<12} {}  {}",
            p.index,
            p.phase,
            p.text,
            if p.pass { "pass" } else { "FAIL" },
            figures.join(", ")
        );
    })?;
    cap::write_csv(&out, &settings, &result)?;
    let runs = result.probes.len() * settings.replications as usize;
    let events: u64 = result.probes.iter().map(|p| p.events).sum();
    let show = |v: f64| cap::show(v, result.integer);
    let verb = match settings.find {
        Find::Max => "highest",
        Find::Min => "lowest",
    };
    let code = match (&result.outcome, result.capacity) {
        (Outcome::Found, Some(c)) => {
            say!(
                "capacity: {path} = {} ({verb} value where every SLO holds)",
                show(c)
            );
            if let Some((a, b)) = result.bracket {
                say!("  bracket  [{}, {}]", show(a), show(b));
            }
            match result.ci {
                Some((l, u)) => say!("  95% CI   [{}, {}]", show(l), show(u)),
                None => {
                    say!("  95% CI   unknown (the metric does not change across the bracket)")
                }
            }
            if let Some(n) = zones.filter(|&n| n > 1) {
                let f = cap::ha_factor(n);
                match settings.find {
                    Find::Min => say!(
                        "  with HA over {n} zones (x{f}): {path} = {} (one zone may fail)",
                        show(cap::with_ha(c, f, result.integer))
                    ),
                    Find::Max => say!(
                        "  with HA over {n} zones (x{f}): plan for {path} = {} (what is left after losing a zone)",
                        show(cap::load_after_zone_loss(c, f))
                    ),
                }
            }
            0
        }
        (Outcome::AtLo, Some(c)) => {
            say!(
                "capacity: {path} <= {} (every SLO already holds at lo; lower --lo)",
                show(c)
            );
            0
        }
        (Outcome::AtLo, None) => {
            say!(
                "capacity: below {path} = {} (an SLO already breaks at lo; lower --lo)",
                show(result.probes[0].value)
            );
            1
        }
        (Outcome::BeyondHi, Some(c)) => {
            say!(
                "capacity: {path} >= {} (every SLO still holds there; raise --hi)",
                show(c)
            );
            1
        }
        _ => {
            say!(
                "capacity: not found (no probe up to the last, {}, meets every SLO; raise --hi)",
                result
                    .probes
                    .last()
                    .map_or(String::new(), |p| show(p.value))
            );
            1
        }
    };
    if !result.broke_first.is_empty() {
        let names: Vec<String> = result
            .broke_first
            .iter()
            .map(|&i| settings.slos[i].to_string())
            .collect();
        say!("  broke first: {}", names.join(", "));
    }
    say!(
        "  {} probes x {} replications = {} runs, {} events in {:.2}s; wrote {}",
        result.probes.len(),
        settings.replications,
        runs,
        events,
        started.elapsed().as_secs_f64(),
        out.join("capacity.csv").display()
    );
    Ok(code)
}
