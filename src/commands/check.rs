//! `dssim check`: the file is valid, the plan of runs, their estimated cost, warnings.

use dssim_lab::LabError;

use super::{limits, load};
use crate::args::CheckArgs;

/// Checks the file and every point of its plan, and prints the plan.
pub(crate) fn execute(args: CheckArgs) -> Result<u8, LabError> {
    let CheckArgs {
        file,
        set,
        limits: limit_args,
    } = args;
    let mut exp = load(&file, &set, None)?;
    exp.limits = limits(&limit_args)?;
    exp.check_all()?;
    let events = exp.estimate_events()?;
    let (most_events, most_memory) = exp.estimate_runs()?;
    say!("{}: ok", file.display());
    if !exp.description.is_empty() {
        say!("  {}", exp.description);
    }
    say!("  experiment   {}", exp.name);
    say!("  model        {}", exp.model_source.path.display());
    say!("  duration     {} (warm-up {})", exp.duration, exp.warmup);
    say!("  seed         {}", exp.seed);
    say!(
        "  plan         {} point(s) x {} replication(s) = {} run(s)",
        exp.points(),
        exp.replications,
        exp.runs()
    );
    for (path, vals) in &exp.sweep {
        // A long list is summarised: its first and last values and its length.
        let v: Vec<String> = if vals.len() <= 12 {
            vals.iter().map(dssim_lab::experiment::value_text).collect()
        } else {
            let t = dssim_lab::experiment::value_text;
            let mut v: Vec<String> = vals[..5].iter().map(t).collect();
            v.push(format!("... {} more ...", vals.len() - 10));
            v.extend(vals[vals.len() - 5..].iter().map(t));
            v
        };
        say!(
            "  sweep        {path} = [{}] ({} values)",
            v.join(", "),
            vals.len()
        );
    }
    if exp.points() > dssim_lab::experiment::FULL_CHECK_POINTS {
        say!(
            "  checked      {} of {} points (every swept value at least once)",
            exp.covering_points().len(),
            exp.points()
        );
    }
    if exp.output.instance_timeseries {
        say!("  instances    instances.csv: each service instance per time-series row");
    }
    if exp.output.trace > 0 {
        say!(
            "  trace        trace.json: the {} {} request(s) of each run's window",
            match exp.output.trace_sample {
                dssim_components::trace::Sample::First => "first",
                dssim_components::trace::Sample::Slowest => "slowest",
            },
            exp.output.trace
        );
    }
    say!("  est. events  ~{:.3e} in all", events);
    say!(
        "  per run      up to ~{:.3e} events (limit {:.1e}; most from {}), ~{} of memory (limit {}; most from {})",
        most_events.events,
        exp.limits.max_events,
        most_events.events_cause.1,
        dssim_lab::limits::show_bytes(most_memory.memory),
        dssim_lab::limits::show_bytes(exp.limits.max_memory),
        most_memory.memory_cause.1,
    );
    let spec = exp.spec(0)?;
    for w in dssim_components::sanity::warnings(&spec.model) {
        say!("  warning      {}: {}", w.path, w.message);
    }
    Ok(0)
}
