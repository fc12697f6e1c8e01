//! Event-loop benchmark: an M/M/1 model built and run through the `dssim-components` API
//! (no files, no CSV), timed with the wall clock. Prints requests/s and events/s.
//!
//! `cargo bench --bench engine` (optionally `-- SECONDS` of simulated time, default 5000:
//! about 4 M requests at 800/s).

use std::time::Instant;

use dssim_components::{ModelConfig, RunOptions};
use dssim_engine::SimTime;

const MODEL: &str = r#"{
  "clients": [{ "name": "users", "target": "server", "arrival": "poisson", "rate": 800 }],
  "services": [{ "name": "server", "workers": 1, "service_time": "exp(1ms)" }]
}"#;

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5000);
    let model: ModelConfig = serde_json::from_str(MODEL).expect("the benchmark model parses");
    let mut best = f64::INFINITY;
    let mut last = None;
    for rep in 0..3u64 {
        let opts = RunOptions {
            seed: 1 + rep,
            duration: SimTime::from_secs(secs),
            warmup: SimTime::ZERO,
            timeseries: None,
            trace: 0,
        };
        let world = model.build(&opts).expect("the benchmark model is valid");
        let t0 = Instant::now();
        let report = world.run().expect("the run conserves requests");
        let wall = t0.elapsed().as_secs_f64();
        let requests = report.metric("requests").unwrap_or(0.0);
        let events = report.metric("events").unwrap_or(0.0);
        println!(
            "engine/mm1 rep {rep}: {requests:.0} requests, {events:.0} events in {wall:.3} s: \
             {:.2} M requests/s, {:.2} M events/s",
            requests / wall / 1e6,
            events / wall / 1e6
        );
        if wall < best {
            best = wall;
            last = Some((requests, events));
        }
    }
    if let Some((requests, events)) = last {
        println!(
            "engine/mm1 best: {:.2} M requests/s, {:.2} M events/s ({:.2} events/request)",
            requests / best / 1e6,
            events / best / 1e6,
            events / requests
        );
    }
}
