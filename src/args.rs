//! The command line's grammar: every command, argument and flag, as clap reads them.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// How `dssim run` prints the results per sweep point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

/// Which end `dssim capacity` looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FindArg {
    Max,
    Min,
}

#[derive(Parser, Debug)]
#[command(name = "dssim", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run an experiment (or a bare model for 60 s) and write its output folder.
    Run(RunArgs),
    /// Validate a model or experiment and print the run plan.
    Check(CheckArgs),
    /// Back-of-envelope: per-component load, utilization, queueing wait, hit ratios of
    /// caches and buffer pools, load on every database node, the first bottleneck; or,
    /// with --users, the traffic calculator.
    Estimate(EstimateArgs),
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
    Capacity(CapacityArgs),
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

/// `dssim run FILE`.
#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// Experiment or model file (.toml or .json).
    pub(crate) file: PathBuf,
    /// Output folder [default: results/<experiment name>].
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) sweep: SweepArgs,
    /// Run only shard K of N (K/N, 0-based): runs whose id mod N is K.
    #[arg(long, value_name = "K/N")]
    pub(crate) shard: Option<String>,
    /// Keep runs already recorded in the output folder and run the rest.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Replace the results of another experiment, seed or overrides in the output folder.
    #[arg(long, conflicts_with = "resume")]
    pub(crate) overwrite: bool,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    /// Print nothing on stdout (no summary line, no table of results).
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// How to print the results per sweep point: a table, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// `dssim check FILE`.
#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    /// Experiment or model file.
    pub(crate) file: PathBuf,
    /// Override a model path or experiment key: PATH=VALUE (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub(crate) set: Vec<String>,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
}

/// `dssim estimate [FILE] [--users N]`.
#[derive(clap::Args, Debug)]
pub(crate) struct EstimateArgs {
    /// Experiment or model file (optional with --users).
    pub(crate) file: Option<PathBuf>,
    /// Override a model path: PATH=VALUE (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub(crate) set: Vec<String>,
    /// Total users (traffic calculator).
    #[arg(long)]
    pub(crate) users: Option<f64>,
    /// Share of users active per day.
    #[arg(long, default_value_t = 0.1)]
    pub(crate) active: f64,
    /// Requests per active user per day.
    #[arg(long, default_value_t = 50.0)]
    pub(crate) requests_per_user: f64,
    /// Share of daily requests in the peak window.
    #[arg(long, default_value_t = 0.4)]
    pub(crate) peak_share: f64,
    /// Length of the peak window, hours.
    #[arg(long, default_value_t = 4.0)]
    pub(crate) peak_hours: f64,
    /// Bytes per response (bandwidth).
    #[arg(long, default_value_t = 2000.0)]
    pub(crate) bytes_per_request: f64,
    /// Rows written per active user per day (storage).
    #[arg(long, default_value_t = 10.0)]
    pub(crate) rows_per_user_day: f64,
    /// Bytes per row.
    #[arg(long, default_value_t = 1000.0)]
    pub(crate) row_bytes: f64,
    /// Data stored today, GB (the storage plan starts from it).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) data_gb: f64,
    /// Storage plan horizon, months (30 days each).
    #[arg(long, default_value_t = 12.0)]
    pub(crate) months: f64,
    /// Storage multiplier for backups (2: a full copy over a 30-day retention).
    #[arg(long, default_value_t = 2.0)]
    pub(crate) backups: f64,
    /// Copies of the data (3: a primary and two replicas).
    #[arg(long, default_value_t = 3.0)]
    pub(crate) replication: f64,
    /// Also name the formula behind each component's figures (exact MVA, M/M/c/K,
    /// Erlang B, M/M/c+D, E_k/M/1, Allen–Cunneen, ...).
    #[arg(long)]
    pub(crate) explain: bool,
}

/// `dssim capacity FILE --slo SLO --vary PATH`.
#[derive(clap::Args, Debug)]
pub(crate) struct CapacityArgs {
    /// Experiment or model file.
    pub(crate) file: PathBuf,
    /// An objective METRIC OP LIMIT, e.g. "p99_ms<200" or "error_rate<0.001" (repeatable;
    /// all must hold). METRIC: a runs.csv column, or error_rate, timeout_rate, shed_rate,
    /// drop_rate, failure_rate (each over requests).
    #[arg(long = "slo", value_name = "SLO", required = true)]
    pub(crate) slo: Vec<String>,
    /// The numeric model path to vary, e.g. clients.users.rate.
    #[arg(long, value_name = "PATH")]
    pub(crate) vary: String,
    /// Where the search starts [default: the path's value in the model].
    #[arg(long)]
    pub(crate) lo: Option<f64>,
    /// Upper end of the search [default: double from lo until the outcome flips].
    #[arg(long)]
    pub(crate) hi: Option<f64>,
    /// Replications per probe (same seeds at every probe).
    #[arg(long, default_value_t = 5)]
    pub(crate) replications: u32,
    /// Relative width of the final bracket (real-valued paths).
    #[arg(long, default_value_t = 0.01)]
    pub(crate) tolerance: f64,
    /// max: highest value where the SLOs hold (a load); min: lowest (a resource).
    #[arg(long, value_enum, default_value_t = FindArg::Max)]
    pub(crate) find: FindArg,
    /// High availability over N zones: with one zone lost the others must still meet
    /// the SLOs, so a resource found with --find min is multiplied by N/(N-1) (3 zones:
    /// ×1.5), and a load found with --find max is divided by it.
    #[arg(long, value_name = "N")]
    pub(crate) zones: Option<u32>,
    /// Output folder for capacity.csv [default: results/<experiment name>-capacity].
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) sweep: SweepArgs,
}

/// `dssim serve [FILE] [--port 8080] [--host 127.0.0.1]`.
#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Experiment to open first (its folder lists the others) [default: ./experiments].
    pub(crate) file: Option<PathBuf>,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8080)]
    pub(crate) port: u16,
    /// Address to bind; only this machine can connect by default.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: std::net::IpAddr,
}

/// How a sweep runs and what it overrides (`run` and `capacity`).
#[derive(clap::Args, Debug)]
pub(crate) struct SweepArgs {
    /// Parallel runs [default: all cores].
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Experiment seed (overrides the file's `seed`).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Override a model path or experiment key: PATH=VALUE (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub(crate) set: Vec<String>,
}

/// Limits on one run, on a whole sweep and on input files (`run` and `check`).
#[derive(clap::Args, Debug)]
pub(crate) struct LimitArgs {
    /// Refuse a run estimated to process more events than this [default: 1e10].
    #[arg(long, value_name = "N")]
    pub(crate) max_events: Option<f64>,
    /// Refuse a run estimated to hold more memory than this, e.g. 16GiB [default: 8GiB].
    #[arg(long, value_name = "SIZE")]
    pub(crate) max_memory: Option<String>,
    /// Refuse a sweep estimated to process more events in all its runs [default: 1e12].
    #[arg(long, value_name = "N")]
    pub(crate) max_total_events: Option<f64>,
    /// Refuse trace files (clients.*.file) larger than this, e.g. 4GiB [default: 1GiB].
    #[arg(long, value_name = "SIZE")]
    pub(crate) max_trace_size: Option<String>,
    /// Run even past the event and memory limits.
    #[arg(long)]
    pub(crate) force: bool,
}
