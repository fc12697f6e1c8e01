//! `--resume`: a finished folder re-runs nothing; a folder cut mid-write (a crash) is
//! completed to files byte-identical to an uninterrupted run.

use std::path::Path;

use crate::support::{reference_run, run_ok, snapshot, tmp_dir};

const EXPERIMENT: &str = r#"
name = "res"
duration = "3s"
warmup = "500ms"
seed = 9
replications = 3

[sweep]
"clients.users.rate" = [200, 400]

[output]
timeseries = "1s"
trace = 2

[model]
[[model.clients]]
name = "users"
target = "app"
rate = 200
timeout = "50ms"

[[model.services]]
name = "app"
workers = 1
queue = 10
service_time = "exp(2ms)"
"#;

fn resume(file: &Path, out: &Path) -> String {
    run_ok(file, out, &["--resume", "--jobs", "2"])
}

#[test]
fn resuming_a_finished_folder_runs_nothing_and_changes_nothing() {
    let dir = tmp_dir("resume-done");
    let (file, out, before) = reference_run(&dir, "res.toml", EXPERIMENT, &["--jobs", "2"]);
    let said = resume(&file, &out);
    assert!(
        said.contains(" 0 runs written") && said.contains("6 already recorded"),
        "unexpected summary: {said}"
    );
    assert!(before == snapshot(&out), "files changed on a no-op resume");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resuming_after_a_crash_mid_write_completes_to_identical_files() {
    let dir = tmp_dir("resume-crash");
    let (file, _, want) = reference_run(&dir, "res.toml", EXPERIMENT, &["--jobs", "1"]);

    // A crash while run 3's row was being written: runs.csv holds runs 0-2 and half a line;
    // the other files hold rows of later runs (written before runs.csv) and a torn line.
    let cut = dir.join("cut");
    std::fs::create_dir_all(&cut).expect("mkdir");
    for (name, bytes) in &want {
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        let keep_runs = if name == "runs.csv" { 3 } else { 5 };
        let mut out = String::new();
        for (i, line) in text.split_inclusive('\n').enumerate() {
            // CSV rows start with the run; trace.json lines with {"pid":RUN,
            let run: usize = line
                .trim_start_matches("{\"pid\":")
                .split(',')
                .next()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            if i > 0 && run >= keep_runs {
                // Half of the first line past the cut, then stop.
                out.push_str(&line[..line.len() / 2]);
                break;
            }
            out.push_str(line);
        }
        if name != "points.csv" {
            std::fs::write(cut.join(name), out).expect("write");
        }
    }
    let said = resume(&file, &cut);
    assert!(
        said.contains(" 3 runs written") && said.contains("3 already recorded"),
        "unexpected summary: {said}"
    );
    let got = snapshot(&cut);
    for ((name, w), (_, g)) in want.iter().zip(&got) {
        assert!(
            w == g,
            "{name} differs after resume:\n--- want\n{}\n--- got\n{}",
            String::from_utf8_lossy(w),
            String::from_utf8_lossy(g)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
