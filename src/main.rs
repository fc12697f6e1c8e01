//! The `dssim` command line: run, check, replay, merge shards, find capacity.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use dssim_lab::{Diagnostic, LabError};

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

/// jemalloc, built (`.cargo/config.toml`) with `thp:always,metadata_thp:always`: it asks
/// the kernel for transparent huge pages (`madvise`) on all its memory, which Linux grants
/// by default only to memory that asks. A run's per-key tables (the caches' entries, the
/// consistency oracle's acknowledgements and histories, the databases' versions: 40 MiB
/// for the stress day) then take a few dozen 2 MiB pages instead of ten thousand 4 KiB
/// ones, so a lookup's cache miss no longer waits for a page walk too, and a prefetch no
/// longer stalls on one (`dssim_engine::prefetch`). glibc's malloc does the same only when
/// the user sets `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`.
///
/// Measured (twelfth session; the stress day's 20-minute proxy, 300 -> 5,800/s, CPU time
/// per round against the session's start, medians): glibc with the tunable 0.976 (12
/// rounds) without the new prefetches, 0.939 and 0.973 with them; this allocator with them
/// 0.946 (10 rounds) and 0.974 (8), and 1.001 when its huge pages are switched off
/// (`_RJEM_MALLOC_CONF=thp:never,metadata_thp:disabled`): the pages are the gain, not the
/// allocator. The cost: peak RSS rounds up to whole huge pages (stress day 40 -> 65 MiB).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod args;
mod commands;
mod ecosystem;
mod progress;
mod shell;
mod summary;

use args::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code() as u8)
        }
    }
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
