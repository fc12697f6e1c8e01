//! trace.json: the traced requests of every run (`[output] trace = N`) in the Chrome
//! trace-event format (JSON object form), which Perfetto (ui.perfetto.dev) and
//! chrome://tracing open.
//!
//! One run is one process (`pid` = run id), one traced request one thread (`tid` = its
//! number, 1..=N). Visits and phases are complete events (`"ph":"X"`) that nest on the
//! request's thread: the client's visit holds its attempts, an attempt the load balancer's
//! visit, that the instance's `queue`, `cpu` and `data` phases, `data` the cache's and the
//! database's visits. A write's replication to each replica is an async span (`"b"`/`"e"`)
//! beside it. Times are microseconds with nanosecond digits.
//!
//! The file reaches the disk like the CSVs: a run's events together as the run finishes, in
//! run order, and it is valid JSON after every run. Every event is one line that starts
//! with `{"pid":RUN,` and ends with a comma; a fixed last line closes the array. So resume
//! keeps the lines of recorded runs, and resorting or merging shards orders lines by run.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use dssim_components::trace::RunTrace;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::LabError;
use crate::experiment::RunSpec;
use crate::output::write_atomic;

/// The file's name in the output folder.
pub const FILE: &str = "trace.json";

const HEADER: &str = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
const TRAILER: &str =
    "{\"name\":\"dssim\",\"ph\":\"M\",\"pid\":0,\"tid\":0,\"args\":{\"format\":\"one run per process, one traced request per thread\"}}\n]}\n";

/// One trace event, one line of the file: the fields of the Chrome format in the order
/// they are written, those an event kind does not have left out.
#[derive(Serialize)]
struct Event<'a> {
    pid: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<u32>,
    ph: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'static str>,
    /// An async span's id (`"b"`/`"e"`): `RUN.TRACE.SPAN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<Micros>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<Micros>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<Args<'a>>,
}

impl<'a> Event<'a> {
    /// A metadata event (`"ph":"M"`) of run `pid`, of request `tid` or of the run itself.
    fn meta(pid: usize, tid: Option<u32>, name: &'a str, args: Args<'a>) -> Self {
        Event {
            pid,
            tid,
            ph: "M",
            name,
            cat: None,
            id: None,
            ts: None,
            dur: None,
            args: Some(args),
        }
    }
}

/// The `args` of an event.
#[derive(Serialize)]
#[serde(untagged)]
enum Args<'a> {
    /// A process's or thread's name.
    Name { name: &'a str },
    /// A process's or thread's place in the list.
    SortIndex { sort_index: usize },
    /// The component a phase belongs to.
    Within {
        #[serde(rename = "in")]
        within: &'a str,
    },
    /// How a visit ended.
    Status { status: &'static str },
}

/// A time in nanoseconds, written as microseconds with three decimals, exactly (a JSON
/// number: `1234.567`, `0.000`; an `f64` would lose the trailing zeros and, past 2^53 ns,
/// digits).
struct Micros(u64);

impl Serialize for Micros {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = format!("{}.{:03}", self.0 / 1000, self.0 % 1000);
        RawValue::from_string(text)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

/// The event lines of one run.
pub fn events(spec: &RunSpec, t: &RunTrace) -> String {
    let pid = spec.run;
    let mut out = String::new();
    let mut line = |e: Event<'_>| {
        // Strings, integers and fixed numbers only: writing them cannot fail.
        out.push_str(&serde_json::to_string(&e).unwrap_or_default());
        out.push_str(",\n");
    };
    let swept = if spec.swept.is_empty() {
        String::new()
    } else {
        format!("; {}", spec.swept.join(", "))
    };
    let process = format!(
        "run {pid} (point {}, replication {}, seed {}{swept})",
        spec.point, spec.replication, spec.seed
    );
    line(Event::meta(
        pid,
        None,
        "process_name",
        Args::Name { name: &process },
    ));
    line(Event::meta(
        pid,
        None,
        "process_sort_index",
        Args::SortIndex { sort_index: pid },
    ));
    for (tid, name) in &t.requests {
        let tid = *tid;
        line(Event::meta(
            pid,
            Some(tid),
            "thread_name",
            Args::Name { name },
        ));
        let sort_index = tid as usize;
        line(Event::meta(
            pid,
            Some(tid),
            "thread_sort_index",
            Args::SortIndex { sort_index },
        ));
    }
    for (i, s) in t.spans.iter().enumerate() {
        let span = |ph, ts, dur, id, args| Event {
            pid,
            tid: Some(s.trace),
            ph,
            name: &s.name,
            cat: Some(s.cat),
            id,
            ts: Some(Micros(ts)),
            dur,
            args,
        };
        if s.replication {
            let id = format!("{pid}.{}.{i}", s.trace);
            line(span("b", s.start_ns, None, Some(id.clone()), None));
            line(span("e", s.end_ns, None, Some(id), None));
            continue;
        }
        let args = if s.status.is_empty() {
            Args::Within { within: &s.within }
        } else {
            Args::Status { status: s.status }
        };
        let dur = Micros(s.end_ns.saturating_sub(s.start_ns));
        line(span("X", s.start_ns, Some(dur), None, Some(args)));
    }
    out
}

/// The run id of an event line (`{"pid":RUN,...`), none for the header and the trailer.
fn run_of(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("{\"pid\":")?;
    let end = rest.find(',')?;
    rest[..end].parse().ok()
}

/// The complete event lines of a trace.json text, with their runs, in file order.
pub fn rows(text: &str) -> Vec<(usize, &str)> {
    text.split_inclusive('\n')
        .filter(|l| l.ends_with(",\n"))
        .filter_map(|l| run_of(l).map(|r| (r, l)))
        .collect()
}

/// Whether a trace.json text ends with its closing line (written with every run's events,
/// so a file without it was cut).
pub fn is_closed(text: &str) -> bool {
    text.ends_with(TRAILER)
}

/// A whole trace.json from event lines.
pub fn assemble<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from(HEADER);
    for l in lines {
        out.push_str(l);
    }
    out.push_str(TRAILER);
    out
}

/// trace.json, open for appending runs.
pub struct TraceFile {
    path: PathBuf,
    file: File,
}

impl TraceFile {
    /// The open file (to sync it).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Opens `dir/trace.json`: empty, or (resume) keeping the runs in `done`.
    pub fn open(
        dir: &Path,
        resume: bool,
        done: &std::collections::BTreeSet<usize>,
    ) -> Result<TraceFile, LabError> {
        let path = dir.join(FILE);
        let text = if resume {
            let old = fs::read_to_string(&path).unwrap_or_default();
            assemble(
                rows(&old)
                    .into_iter()
                    .filter(|(r, _)| done.contains(r))
                    .map(|(_, l)| l),
            )
        } else {
            assemble([])
        };
        write_atomic(&path, &text)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| LabError::io(&path, e))?;
        Ok(TraceFile { path, file })
    }

    /// Appends one run's event lines (before the closing line) in one write. A failed
    /// write is cut back, so the file keeps its previous runs and stays valid JSON.
    pub fn append(&mut self, events: &str) -> Result<(), LabError> {
        if events.is_empty() {
            return Ok(());
        }
        let io = |e: std::io::Error| LabError::io(&self.path, format!("cannot write: {e}"));
        let len = self.file.metadata().map_err(io)?.len();
        let at = len.saturating_sub(TRAILER.len() as u64);
        let mut text = String::with_capacity(events.len() + TRAILER.len());
        text.push_str(events);
        text.push_str(TRAILER);
        let res = self
            .file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.write_all(text.as_bytes()))
            .and_then(|_| self.file.flush());
        if let Err(e) = res {
            let _ = self.file.set_len(at);
            let _ = self
                .file
                .seek(SeekFrom::Start(at))
                .and_then(|_| self.file.write_all(TRAILER.as_bytes()));
            return Err(io(e));
        }
        Ok(())
    }
}

/// Reorders the runs of `dir/trace.json` by run id (stable), for resumed folders.
pub fn sort_by_run(dir: &Path) -> Result<(), LabError> {
    let path = dir.join(FILE);
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(());
    };
    let mut rows = rows(&text);
    if rows.windows(2).all(|w| w[0].0 <= w[1].0) {
        return Ok(());
    }
    rows.sort_by_key(|r| r.0);
    write_atomic(&path, &assemble(rows.into_iter().map(|(_, l)| l)))
}

/// Merges the trace.json files of shard folders into `out` (none when no shard has one).
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<(), LabError> {
    let texts: Vec<String> = dirs
        .iter()
        .filter_map(|d| fs::read_to_string(d.join(FILE)).ok())
        .collect();
    if texts.is_empty() {
        return Ok(());
    }
    let mut all: Vec<(usize, &str)> = texts.iter().flat_map(|t| rows(t)).collect();
    all.sort_by_key(|r| r.0);
    write_atomic(&out.join(FILE), &assemble(all.into_iter().map(|(_, l)| l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_valid_json_after_every_run_and_rows_round_trip() {
        let dir = std::env::temp_dir().join(format!("dssim-trace-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut f = TraceFile::open(&dir, false, &Default::default()).unwrap();
        let text = fs::read_to_string(dir.join(FILE)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["traceEvents"].as_array().unwrap().len(), 1);
        f.append("{\"pid\":3,\"ph\":\"M\",\"name\":\"x\",\"args\":{}},\n")
            .unwrap();
        f.append("{\"pid\":1,\"ph\":\"M\",\"name\":\"y\",\"args\":{}},\n")
            .unwrap();
        let text = fs::read_to_string(dir.join(FILE)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["traceEvents"].as_array().unwrap().len(), 3);
        assert_eq!(
            rows(&text).iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![3, 1]
        );
        sort_by_run(&dir).unwrap();
        let text = fs::read_to_string(dir.join(FILE)).unwrap();
        assert_eq!(
            rows(&text).iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![1, 3]
        );
        // Resume keeps only recorded runs.
        drop(f);
        TraceFile::open(&dir, true, &[3].into_iter().collect()).unwrap();
        let text = fs::read_to_string(dir.join(FILE)).unwrap();
        assert_eq!(rows(&text).iter().map(|r| r.0).collect::<Vec<_>>(), vec![3]);
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn times_are_microseconds_with_nanosecond_digits() {
        let us = |ns| serde_json::to_string(&Micros(ns)).unwrap();
        assert_eq!(us(0), "0.000");
        assert_eq!(us(1_234_567), "1234.567");
        assert_eq!(us(5), "0.005");
        assert_eq!(us(u64::MAX), "18446744073709551.615");
    }

    #[test]
    fn event_lines_keep_their_format_byte_for_byte() {
        use dssim_components::trace::SpanRecord;
        use dssim_components::{ModelConfig, RunOptions};
        use dssim_engine::SimTime;
        let spec = RunSpec {
            run: 7,
            point: 3,
            replication: 1,
            seed: 42,
            swept: vec!["0.5".into(), "a\"b".into()],
            model: ModelConfig::default(),
            opts: RunOptions {
                trace: 1,
                ..RunOptions::new(42, SimTime::from_secs(1), SimTime::ZERO)
            },
        };
        let span =
            |name: &str, cat, within: &str, status, replication, start_ns, end_ns| SpanRecord {
                trace: 2,
                name: name.into(),
                cat,
                within: within.into(),
                status,
                replication,
                level: 0,
                start_ns,
                end_ns,
            };
        let t = RunTrace {
            requests: vec![(2, "#2 write key 5 from users".into())],
            spans: vec![
                span("app.0", "service", "", "ok", false, 1_000, 2_500_001),
                span("queue", "service", "app.0", "", false, 1_000, 1_000),
                span(
                    "replicate to db.replica.0",
                    "replication",
                    "",
                    "",
                    true,
                    5,
                    123_456_789_000,
                ),
            ],
        };
        // The lines the hand-written format! code wrote before the serde types.
        let expected = [
            r#"{"pid":7,"ph":"M","name":"process_name","args":{"name":"run 7 (point 3, replication 1, seed 42; 0.5, a\"b)"}},"#,
            r#"{"pid":7,"ph":"M","name":"process_sort_index","args":{"sort_index":7}},"#,
            r##"{"pid":7,"tid":2,"ph":"M","name":"thread_name","args":{"name":"#2 write key 5 from users"}},"##,
            r#"{"pid":7,"tid":2,"ph":"M","name":"thread_sort_index","args":{"sort_index":2}},"#,
            r#"{"pid":7,"tid":2,"ph":"X","name":"app.0","cat":"service","ts":1.000,"dur":2499.001,"args":{"status":"ok"}},"#,
            r#"{"pid":7,"tid":2,"ph":"X","name":"queue","cat":"service","ts":1.000,"dur":0.000,"args":{"in":"app.0"}},"#,
            r#"{"pid":7,"tid":2,"ph":"b","name":"replicate to db.replica.0","cat":"replication","id":"7.2.2","ts":0.005},"#,
            r#"{"pid":7,"tid":2,"ph":"e","name":"replicate to db.replica.0","cat":"replication","id":"7.2.2","ts":123456789.000},"#,
        ];
        let text = events(&spec, &t);
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
        assert!(text.ends_with(",\n"));
    }
}
