//! `dssim run`: the sweep, Ctrl-C, the progress bar and the table of results.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dssim_lab::{LabError, RunSettings};

use super::{jobs_or_cores, limits, load, parse_shard};
use crate::args::{Format, RunArgs, SweepArgs};
use crate::{progress, shell, summary};

/// Runs the experiment's plan into its output folder; 130 when interrupted.
pub(crate) fn execute(args: RunArgs) -> Result<u8, LabError> {
    let RunArgs {
        file,
        out,
        sweep: SweepArgs { jobs, seed, set },
        shard,
        resume,
        overwrite,
        limits: limit_args,
        quiet,
        format,
    } = args;
    let mut exp = load(&file, &set, seed)?;
    exp.limits = limits(&limit_args)?;
    let shard = shard.as_deref().map(parse_shard).transpose()?;
    let out = out.unwrap_or_else(|| PathBuf::from("results").join(&exp.name));
    let jobs = jobs_or_cores(jobs);
    let settings = RunSettings {
        out: out.clone(),
        jobs,
        resume,
        overwrite,
        shard,
        command: std::env::args().collect(),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let c = cancel.clone();
        let _ = ctrlc::set_handler(move || {
            if c.swap(true, Ordering::SeqCst) {
                // A second Ctrl-C: everything finished is already on disk.
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: finishing the runs in flight and flushing (Ctrl-C again to quit now)");
        });
    }
    let tty = std::io::stdout().is_terminal();
    let summary = if tty {
        let p = progress::Bar::new();
        dssim_lab::execute(&exp, &settings, &p, &cancel)?
    } else {
        dssim_lab::execute(&exp, &settings, &dssim_lab::Quiet, &cancel)?
    };
    let rate = if summary.wall_s > 0.0 {
        summary.events as f64 / summary.wall_s
    } else {
        0.0
    };
    if !quiet {
        print_results(&exp.name, &out, format, &summary, rate);
    }
    if summary.interrupted {
        let args: Vec<String> = std::env::args().collect();
        eprintln!(
            "stopped early: resume with `{}`",
            shell::resume_command(&args, &out)
        );
        return Ok(130);
    }
    Ok(0)
}

/// After a run: the summary line and the table (or JSON) of results per sweep point.
fn print_results(name: &str, out: &Path, format: Format, summary: &dssim_lab::Summary, rate: f64) {
    let rows = summary::read(out).unwrap_or_default();
    if format == Format::Json {
        say_raw!("{}", summary::json(name, out, &rows));
        return;
    }
    say!(
        "{}: {} runs written to {} ({} already recorded), {} events in {:.2}s ({:.2} M events/s)",
        name,
        summary.ran,
        out.display(),
        summary.skipped,
        summary.events,
        summary.wall_s,
        rate / 1e6
    );
    say_raw!("{}", summary::table(&rows));
}
