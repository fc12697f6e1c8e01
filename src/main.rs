//! The `dssim` command line: run, check, replay, merge shards, find capacity.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use dssim_lab::{Diagnostic, Experiment, LabError, RunSettings};

mod ecosystem;
mod explain_cmd;
mod progress;
mod shell;
mod summary;

/// `println!` / `print!` to stdout that end the process quietly (exit 0) when stdout is
/// closed, as in `dssim explain | head`, instead of panicking: the reader has what it asked
/// for, and every output file is already written.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}
macro_rules! say_raw {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if write!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}

/// Deterministic discrete-event simulator of distributed web systems.
/// How `dssim run` prints the results per sweep point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

/// Which end `dssim capacity` looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FindArg {
    Max,
    Min,
}

#[derive(Parser, Debug)]
#[command(name = "dssim", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an experiment (or a bare model for 60 s) and write its output folder.
    Run {
        /// Experiment or model file (.toml or .json).
        file: PathBuf,
        /// Output folder [default: results/<experiment name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Parallel runs [default: all cores].
        #[arg(long)]
        jobs: Option<usize>,
        /// Experiment seed (overrides the file's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Override a model path or experiment key: PATH=VALUE (repeatable).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Run only shard K of N (K/N, 0-based): runs whose id mod N is K.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// Keep runs already recorded in the output folder and run the rest.
        #[arg(long)]
        resume: bool,
        /// Replace the results of another experiment, seed or overrides in the output folder.
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
        /// Refuse a run estimated to process more events than this [default: 1e10].
        #[arg(long, value_name = "N")]
        max_events: Option<f64>,
        /// Refuse a run estimated to hold more memory than this, e.g. 16GiB [default: 8GiB].
        #[arg(long, value_name = "SIZE")]
        max_memory: Option<String>,
        #[command(flatten)]
        sweep_limits: SweepLimits,
        /// Run even past the event and memory limits.
        #[arg(long)]
        force: bool,
        /// Print nothing on stdout (no summary line, no table of results).
        #[arg(long, short)]
        quiet: bool,
        /// How to print the results per sweep point: a table, or JSON for scripts.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Validate a model or experiment and print the run plan.
    Check {
        /// Experiment or model file.
        file: PathBuf,
        /// Override a model path or experiment key: PATH=VALUE (repeatable).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Refuse a run estimated to process more events than this [default: 1e10].
        #[arg(long, value_name = "N")]
        max_events: Option<f64>,
        /// Refuse a run estimated to hold more memory than this, e.g. 16GiB [default: 8GiB].
        #[arg(long, value_name = "SIZE")]
        max_memory: Option<String>,
        #[command(flatten)]
        sweep_limits: SweepLimits,
        /// Run even past the event and memory limits.
        #[arg(long)]
        force: bool,
    },
    /// Back-of-envelope: per-component load, utilization, queueing wait, hit ratios of
    /// caches and buffer pools, load on every database node, the first bottleneck; or,
    /// with --users, the traffic calculator.
    Estimate {
        /// Experiment or model file (optional with --users).
        file: Option<PathBuf>,
        /// Override a model path: PATH=VALUE (repeatable).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Total users (traffic calculator).
        #[arg(long)]
        users: Option<f64>,
        /// Share of users active per day.
        #[arg(long, default_value_t = 0.1)]
        active: f64,
        /// Requests per active user per day.
        #[arg(long, default_value_t = 50.0)]
        requests_per_user: f64,
        /// Share of daily requests in the peak window.
        #[arg(long, default_value_t = 0.4)]
        peak_share: f64,
        /// Length of the peak window, hours.
        #[arg(long, default_value_t = 4.0)]
        peak_hours: f64,
        /// Bytes per response (bandwidth).
        #[arg(long, default_value_t = 2000.0)]
        bytes_per_request: f64,
        /// Rows written per active user per day (storage).
        #[arg(long, default_value_t = 10.0)]
        rows_per_user_day: f64,
        /// Bytes per row.
        #[arg(long, default_value_t = 1000.0)]
        row_bytes: f64,
        /// Data stored today, GB (the storage plan starts from it).
        #[arg(long, default_value_t = 0.0)]
        data_gb: f64,
        /// Storage plan horizon, months (30 days each).
        #[arg(long, default_value_t = 12.0)]
        months: f64,
        /// Storage multiplier for backups (2: a full copy over a 30-day retention).
        #[arg(long, default_value_t = 2.0)]
        backups: f64,
        /// Copies of the data (3: a primary and two replicas).
        #[arg(long, default_value_t = 3.0)]
        replication: f64,
        /// Also name the formula behind each component's figures (exact MVA, M/M/c/K,
        /// Erlang B, M/M/c+D, E_k/M/1, Allen–Cunneen, ...).
        #[arg(long)]
        explain: bool,
    },
    /// Every parameter: its type, allowed values, default and meaning (generated from the
    /// loader's own schema); or, given a file, that file's keys with their effective values.
    Explain {
        /// A section (clients, services, caches, network, ...), a path (caches.capacity,
        /// databases.buffer_pool), or a model/experiment file; everything when absent.
        component: Option<String>,
        /// With a file: override a model path or experiment key, PATH=VALUE (repeatable).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
    },
    /// Find the highest load (or lowest resource) at which every SLO holds.
    Capacity {
        /// Experiment or model file.
        file: PathBuf,
        /// An objective METRIC OP LIMIT, e.g. "p99_ms<200" or "error_rate<0.001" (repeatable;
        /// all must hold). METRIC: a runs.csv column, or error_rate, timeout_rate, shed_rate,
        /// drop_rate, failure_rate (each over requests).
        #[arg(long = "slo", value_name = "SLO", required = true)]
        slo: Vec<String>,
        /// The numeric model path to vary, e.g. clients.users.rate.
        #[arg(long, value_name = "PATH")]
        vary: String,
        /// Where the search starts [default: the path's value in the model].
        #[arg(long)]
        lo: Option<f64>,
        /// Upper end of the search [default: double from lo until the outcome flips].
        #[arg(long)]
        hi: Option<f64>,
        /// Replications per probe (same seeds at every probe).
        #[arg(long, default_value_t = 5)]
        replications: u32,
        /// Relative width of the final bracket (real-valued paths).
        #[arg(long, default_value_t = 0.01)]
        tolerance: f64,
        /// max: highest value where the SLOs hold (a load); min: lowest (a resource).
        #[arg(long, value_enum, default_value_t = FindArg::Max)]
        find: FindArg,
        /// High availability over N zones: with one zone lost the others must still meet
        /// the SLOs, so a resource found with --find min is multiplied by N/(N-1) (3 zones:
        /// ×1.5), and a load found with --find max is divided by it.
        #[arg(long, value_name = "N")]
        zones: Option<u32>,
        /// Output folder for capacity.csv [default: results/<experiment name>-capacity].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Parallel runs [default: all cores].
        #[arg(long)]
        jobs: Option<usize>,
        /// Experiment seed (overrides the file's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Override a model path or experiment key: PATH=VALUE (repeatable).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
    },
    /// Merge the folders of `dssim run --shard K/N` (K = 0..N-1) into one result folder.
    Merge {
        /// The shard folders, all N of them.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output folder [default: results/<experiment name>].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print a shell completion script: `dssim completions bash > ~/.local/share/bash-completion/completions/dssim`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `dssim man > dssim.1 && man ./dssim.1`.
    Man,
    /// Serve the live classroom page: pick or paste an experiment, run it paced to the
    /// clock, kill and recover components, export the demo as a replayable experiment.
    Serve(ServeArgs),
    /// Re-run one recorded run; exit 0 only if its runs.csv row is identical.
    Replay {
        /// An output folder written by `dssim run`.
        dir: PathBuf,
        /// The run id to replay.
        #[arg(long)]
        run: usize,
    },
}

/// `dssim serve [FILE] [--port 8080] [--host 127.0.0.1]`.
#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Experiment to open first (its folder lists the others) [default: ./experiments].
    file: Option<PathBuf>,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to bind; only this machine can connect by default.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
}

/// Limits on a whole sweep and on input files (`run` and `check`).
#[derive(clap::Args, Debug)]
struct SweepLimits {
    /// Refuse a sweep estimated to process more events in all its runs [default: 1e12].
    #[arg(long, value_name = "N")]
    max_total_events: Option<f64>,
    /// Refuse trace files (clients.*.file) larger than this, e.g. 4GiB [default: 1GiB].
    #[arg(long, value_name = "SIZE")]
    max_trace_size: Option<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code() as u8)
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

fn dispatch(cli: Cli) -> Result<u8, LabError> {
    match cli.command {
        Command::Run {
            file,
            out,
            jobs,
            seed,
            set,
            shard,
            resume,
            overwrite,
            max_events,
            max_memory,
            sweep_limits,
            force,
            quiet,
            format,
        } => {
            let mut exp = load(&file, &set, seed)?;
            exp.limits = limits(max_events, max_memory.as_deref(), &sweep_limits, force)?;
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
        Command::Check {
            file,
            set,
            max_events,
            max_memory,
            sweep_limits,
            force,
        } => {
            let mut exp = load(&file, &set, None)?;
            exp.limits = limits(max_events, max_memory.as_deref(), &sweep_limits, force)?;
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
        Command::Estimate {
            file,
            set,
            users,
            active,
            requests_per_user,
            peak_share,
            peak_hours,
            bytes_per_request,
            rows_per_user_day,
            row_bytes,
            data_gb,
            months,
            backups,
            replication,
            explain,
        } => {
            if let Some(users) = users {
                let t = dssim_lab::estimate::Traffic {
                    users,
                    active,
                    requests_per_user,
                    peak_share,
                    peak_hours,
                    bytes_per_request,
                    rows_per_user_day,
                    row_bytes,
                }
                .estimate();
                say!("users                 {users:>14.0}");
                say!("daily active users    {:>14.0}", t.dau);
                say!("requests per day      {:>14.0}", t.daily_requests);
                say!("average rps           {:>14.1}", t.average_rps);
                say!("peak rps              {:>14.1}", t.peak_rps);
                say!(
                    "storage growth        {:>14.2} GB/day  ({:.2} TB/year)",
                    t.storage_gb_per_day,
                    t.storage_tb_per_year
                );
                say!("bandwidth at peak     {:>14.3} Gbps", t.peak_gbps);
                let plan = dssim_lab::capacity::StoragePlan {
                    current_gb: data_gb,
                    monthly_gb: t.storage_gb_per_day * 30.0,
                    months,
                    backups,
                    replication,
                };
                say!(
                    "{:<22}{:>14.1} GB  ({data_gb} GB now + {:.1} GB/month)",
                    format!("storage in {months} months"),
                    plan.projected_gb(),
                    plan.monthly_gb
                );
                say!(
                    "{:<22}{:>14.1} GB",
                    format!("  with backups x{backups}"),
                    plan.with_backups_gb()
                );
                say!(
                    "{:<22}{:>14.1} GB  (disk to provision)",
                    format!("  with {replication} copies"),
                    plan.total_gb()
                );
            }
            if let Some(file) = file {
                let exp = load(&file, &set, None)?;
                let points = exp.points();
                for point in 0..points {
                    let spec = exp.spec(point * exp.replications as usize)?;
                    if points > 1 {
                        let swept: Vec<String> = exp
                            .swept_paths()
                            .iter()
                            .zip(&spec.swept)
                            .map(|(p, v)| format!("{p} = {v}"))
                            .collect();
                        say!(
                            "{}sweep point {point} of {points}: {}",
                            if point > 0 { "\n" } else { "" },
                            swept.join(", ")
                        );
                    }
                    let est = dssim_lab::estimate::estimate(&spec.model);
                    say_raw!("{}", dssim_lab::estimate::render(&spec.model, &est));
                    if explain {
                        say_raw!("{}", dssim_lab::estimate::render_explain(&est));
                    }
                }
            } else if users.is_none() {
                return Err(LabError::Input(Diagnostic::plain(
                    Path::new("estimate"),
                    "give a model or experiment file, or --users N for the traffic calculator",
                )));
            }
            Ok(0)
        }
        Command::Explain { component, set } => {
            match component.as_deref() {
                Some(f) if explain_cmd::is_file(f) => {
                    let exp = load(Path::new(f), &set, None)?;
                    say_raw!("{}", explain_cmd::file(&exp)?);
                }
                c => say_raw!("{}", explain_cmd::section(c)?),
            }
            Ok(0)
        }
        Command::Capacity {
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
            jobs,
            seed,
            set,
        } => capacity(
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
        ),
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

/// The limits of `run` and `check` from their flags.
fn limits(
    max_events: Option<f64>,
    max_memory: Option<&str>,
    sweep: &SweepLimits,
    force: bool,
) -> Result<dssim_lab::limits::Limits, LabError> {
    let mut l = dssim_lab::limits::Limits {
        force,
        ..Default::default()
    };
    if let Some(n) = max_events {
        if !(n.is_finite() && n > 0.0) {
            return Err(LabError::Input(Diagnostic::plain(
                Path::new("--max-events"),
                format!("expected a number of events above zero, such as 1e11; found {n}"),
            )));
        }
        l.max_events = n;
    }
    if let Some(m) = max_memory {
        l.max_memory = dssim_lab::limits::parse_size(m)
            .map_err(|e| LabError::Input(Diagnostic::plain(Path::new("--max-memory"), e)))?;
    }
    if let Some(n) = sweep.max_total_events {
        if !(n.is_finite() && n > 0.0) {
            return Err(LabError::Input(Diagnostic::plain(
                Path::new("--max-total-events"),
                format!("expected a number of events above zero, such as 1e13; found {n}"),
            )));
        }
        l.max_total_events = n;
    }
    if let Some(m) = &sweep.max_trace_size {
        l.max_trace_bytes = dssim_lab::limits::parse_size(m)
            .map_err(|e| LabError::Input(Diagnostic::plain(Path::new("--max-trace-size"), e)))?
            as u64;
    }
    Ok(l)
}

fn jobs_or_cores(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
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

/// Prints an error: file diagnostics with a source excerpt, others as one line.
fn report(e: &LabError) {
    match e {
        LabError::Input(d) => render(d),
        LabError::Inputs(ds) => ds.iter().for_each(render),
        other => eprintln!("error: {other}"),
    }
}

fn render(d: &Diagnostic) {
    use ariadne::{Config, IndexType, Label, Report, ReportKind, Source};
    let (Some(text), Some(span)) = (&d.text, &d.span) else {
        eprintln!("error: {d}");
        return;
    };
    // A source excerpt of a huge line would be as huge: the location and message alone.
    let b = text.as_bytes();
    let line = b[..span.start.min(b.len())]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i + 1);
    if b[line..]
        .iter()
        .position(|&c| c == b'\n')
        .unwrap_or(b.len() - line)
        > 1000
    {
        eprintln!("error: {d}");
        return;
    }
    {
        let name = d.file.display().to_string();
        let span =
            span.start.min(text.len())..span.end.min(text.len()).max(span.start.min(text.len()));
        let mut r = Report::build(ReportKind::Error, (name.clone(), span.clone()))
            .with_config(
                Config::default()
                    .with_color(std::io::stderr().is_terminal())
                    // Spans are byte offsets (files may hold "—" or "×" before them).
                    .with_index_type(IndexType::Byte),
            )
            .with_message(format!("{}: {}", d.location(), d.message))
            .with_label(Label::new((name.clone(), span)).with_message("here"));
        if let Some(h) = &d.help {
            r = r.with_help(h);
        }
        let _ = r.finish().eprint((name, Source::from(text.as_str())));
    }
}
