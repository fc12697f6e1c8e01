//! The progress bar shown on a terminal: runs done, events per second, ETA.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// An indicatif bar fed by the runner.
pub struct Bar {
    bar: ProgressBar,
    events: AtomicU64,
    started: Instant,
}

impl Bar {
    /// A hidden bar until the plan is known.
    pub fn new() -> Self {
        Bar {
            bar: ProgressBar::hidden(),
            events: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl dssim_lab::Progress for Bar {
    fn start(&self, total: usize, done: usize) {
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        self.bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {msg}  ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    }

    fn run_done(&self, events: u64) {
        let total = self.events.fetch_add(events, Ordering::Relaxed) + events;
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        self.bar
            .set_message(format!("{:.2} M events/s", total as f64 / secs / 1e6));
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
