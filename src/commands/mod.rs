//! One module per command with more than a few lines; the small ones stay here, in
//! [`dispatch`], with the helpers commands share (loading a file with `--set`, limits,
//! shards, jobs).

use std::path::{Path, PathBuf};

use dssim_lab::{Diagnostic, Experiment, LabError};

use crate::args::{Cli, Command, LimitArgs};
use crate::ecosystem;

mod capacity;
mod check;
mod estimate;
mod explain;
mod run;

/// Runs the command; the exit code (0 success, 1 a failed check, 130 interrupted).
pub(crate) fn dispatch(cli: Cli) -> Result<u8, LabError> {
    match cli.command {
        Command::Run(a) => run::execute(a),
        Command::Check(a) => check::execute(a),
        Command::Estimate(a) => estimate::execute(a),
        Command::Explain { component, set } => {
            match component.as_deref() {
                Some(f) if explain::is_file(f) => {
                    let exp = load(Path::new(f), &set, None)?;
                    say_raw!("{}", explain::file(&exp)?);
                }
                c => say_raw!("{}", explain::section(c)?),
            }
            Ok(0)
        }
        Command::Capacity(a) => capacity::execute(a),
        Command::Merge { dirs, out } => {
            let out = match out {
                Some(o) => o,
                None => {
                    let first = dirs.first().map(|d| dssim_lab::manifest::Manifest::read(d));
                    match first {
                        Some(Ok(m)) => PathBuf::from("results").join(m.experiment),
                        _ => PathBuf::from("results").join("merged"),
                    }
                }
            };
            let command: Vec<String> = std::env::args().collect();
            let s = dssim_lab::merge::merge(&dirs, &out, &command)?;
            say!(
                "{}: merged {} shards, {} runs, into {}",
                s.experiment,
                s.shards,
                s.runs,
                out.display()
            );
            Ok(0)
        }
        Command::Completions { shell } => {
            say_raw!("{}", ecosystem::completions(shell));
            Ok(0)
        }
        Command::Man => {
            say_raw!("{}", ecosystem::man_page());
            Ok(0)
        }
        Command::Serve(a) => dssim_serve::serve(dssim_serve::Options {
            file: a.file,
            host: a.host,
            port: a.port,
        })
        .map(|()| 0)
        .map_err(LabError::Run),
        Command::Replay { dir, run } => {
            let r = dssim_lab::replay(&dir, run)?;
            if r.identical() {
                say!("run {run}: identical");
                Ok(0)
            } else {
                let diffs = r.differences();
                let names: Vec<&str> = diffs.iter().map(|d| d.0.as_str()).collect();
                eprintln!("run {run}: differs in {}", names.join(", "));
                for (col, a, b) in &diffs {
                    eprintln!("  {col}: recorded {a}, replayed {b}");
                }
                Ok(1)
            }
        }
    }
}

fn load(file: &Path, set: &[String], seed: Option<u64>) -> Result<Experiment, LabError> {
    let mut exp = Experiment::load(file)?;
    exp.apply_cli_sets(set)?;
    if let Some(s) = seed {
        exp.seed = s;
    }
    Ok(exp)
}

fn parse_shard(s: &str) -> Result<(usize, usize), LabError> {
    let bad = || {
        LabError::Input(Diagnostic::plain(
            Path::new("--shard"),
            format!("expected K/N with 0 <= K < N (for example 0/4), found {s:?}"),
        ))
    };
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || k >= n {
        return Err(bad());
    }
    Ok((k, n))
}

/// The limits of `run` and `check` from their flags.
fn limits(args: &LimitArgs) -> Result<dssim_lab::limits::Limits, LabError> {
    let mut l = dssim_lab::limits::Limits {
        force: args.force,
        ..Default::default()
    };
    if let Some(n) = args.max_events {
        l.max_events = events_flag("--max-events", n, "1e11")?;
    }
    if let Some(m) = &args.max_memory {
        l.max_memory = size_flag("--max-memory", m)?;
    }
    if let Some(n) = args.max_total_events {
        l.max_total_events = events_flag("--max-total-events", n, "1e13")?;
    }
    if let Some(m) = &args.max_trace_size {
        l.max_trace_bytes = size_flag("--max-trace-size", m)? as u64;
    }
    Ok(l)
}

/// A number of events given to `flag`: finite and above zero.
fn events_flag(flag: &str, n: f64, example: &str) -> Result<f64, LabError> {
    if n.is_finite() && n > 0.0 {
        Ok(n)
    } else {
        Err(LabError::Input(Diagnostic::plain(
            Path::new(flag),
            format!("expected a number of events above zero, such as {example}; found {n}"),
        )))
    }
}

/// A size given to `flag` ("8GiB").
fn size_flag(flag: &str, text: &str) -> Result<f64, LabError> {
    dssim_lab::limits::parse_size(text)
        .map_err(|e| LabError::Input(Diagnostic::plain(Path::new(flag), e)))
}

fn jobs_or_cores(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
