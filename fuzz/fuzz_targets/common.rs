// Shared by the fuzz targets: load text as an experiment (or model), resolve every run,
// build each world, and run it for a short, bounded simulated time. Any panic is a bug;
// errors are the expected answer to bad input.
use std::path::Path;

use dssim_engine::SimTime;
use dssim_lab::source::Source;
use dssim_lab::Experiment;

pub fn exercise(name: &str, text: String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments").join(name);
    let Ok(mut exp) = Experiment::from_source(Source::from_text(&path, text)) else {
        return;
    };
    // Keep each input cheap: short runs, few of them.
    exp.duration = exp.duration.min(SimTime::from_millis(200));
    exp.warmup = exp.warmup.min(SimTime::from_millis(50));
    let runs = exp.runs().min(4);
    for r in 0..runs {
        let Ok(mut spec) = exp.spec(r) else { return };
        spec.opts.duration = exp.duration;
        spec.opts.warmup = exp.warmup.min(exp.duration);
        for c in &mut spec.model.clients {
            // Bound the work a single input may ask for.
            if let Some(rate) = c.rate.as_mut() {
                *rate = rate.min(20_000.0);
            }
            if let Some(u) = c.users.as_mut() {
                *u = (*u).min(2_000);
            }
        }
        let _ = dssim_lab::run_one(&spec);
    }
}
