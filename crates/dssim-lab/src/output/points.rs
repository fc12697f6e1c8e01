//! points.csv: per sweep point, the mean of every metric over its replications and the
//! half-width of its 95% confidence interval.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::{csv_field, opt};
use crate::error::LabError;
use crate::stats::student_t_975;

/// Writes points.csv from runs.csv: per sweep point, the mean of every metric over its
/// replications and the half-width of its 95% confidence interval (Student t). Streams:
/// runs.csv is in run order, so a point's runs are consecutive rows and only one point is
/// held at a time.
pub fn write_points(dir: &Path, swept: &[String]) -> Result<(), LabError> {
    use std::io::BufWriter;
    let runs_path = dir.join("runs.csv");
    let file = File::open(&runs_path).map_err(|e| LabError::io(&runs_path, e))?;
    let mut rdr = csv::ReaderBuilder::new().from_reader(std::io::BufReader::new(file));
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| LabError::io(&runs_path, e))?
        .iter()
        .map(String::from)
        .collect();
    let first_metric = 4 + swept.len();
    let metrics: Vec<(usize, &str)> = headers
        .iter()
        .enumerate()
        .skip(first_metric.min(headers.len()))
        .map(|(i, m)| (i, m.as_str()))
        .filter(|(_, m)| !matches!(*m, "duration_s" | "events"))
        .collect();
    let out_path = dir.join("points.csv");
    let tmp = dir.join("points.csv.tmp");
    let io = |e: std::io::Error| LabError::io(&out_path, format!("cannot write: {e}"));
    let mut w = BufWriter::new(File::create(&tmp).map_err(io)?);
    let mut head = String::from("point");
    for s in swept {
        head.push(',');
        head.push_str(&csv_field(s));
    }
    head.push_str(",runs");
    for (_, m) in &metrics {
        head.push_str(&format!(",{m},{m}_ci95"));
    }
    head.push('\n');
    w.write_all(head.as_bytes()).map_err(io)?;
    // The point being read: its number, swept values, each metric's values, run count.
    let mut cur: Option<PointAcc> = None;
    let emit = |w: &mut BufWriter<File>, p: &PointAcc| {
        let mut line = p.0.to_string();
        for v in &p.1 {
            line.push(',');
            line.push_str(&csv_field(v));
        }
        line.push_str(&format!(",{}", p.3));
        for xs in &p.2 {
            let (mean, half) = mean_ci95(xs);
            line.push_str(&format!(",{},{}", opt(mean), opt(half)));
        }
        line.push('\n');
        w.write_all(line.as_bytes())
    };
    let mut rec = csv::StringRecord::new();
    while rdr
        .read_record(&mut rec)
        .map_err(|e| LabError::io(&runs_path, e))?
    {
        let point: usize = rec.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        if cur.as_ref().is_none_or(|c| c.0 != point) {
            if let Some(c) = cur.take() {
                emit(&mut w, &c).map_err(io)?;
            }
            cur = Some((
                point,
                (0..swept.len())
                    .map(|i| rec.get(4 + i).unwrap_or("").to_string())
                    .collect(),
                vec![Vec::new(); metrics.len()],
                0,
            ));
        }
        let c = cur.as_mut().expect("a point");
        c.3 += 1;
        for (mi, (col, _)) in metrics.iter().enumerate() {
            if let Some(v) = rec.get(*col).and_then(|x| x.parse::<f64>().ok()) {
                c.2[mi].push(v);
            }
        }
    }
    if let Some(c) = cur.take() {
        emit(&mut w, &c).map_err(io)?;
    }
    w.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    fs::rename(&tmp, &out_path).map_err(|e| LabError::io(&out_path, e))
}

/// One point of points.csv while it is read: number, swept values, each metric's values,
/// run count.
type PointAcc = (usize, Vec<String>, Vec<Vec<f64>>, usize);

/// Mean and 95% half-width (Student t with n−1 degrees of freedom); no half-width for n < 2.
pub fn mean_ci95(xs: &[f64]) -> (Option<f64>, Option<f64>) {
    if xs.is_empty() {
        return (None, None);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (Some(mean), None);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (
        Some(mean),
        Some(student_t_975(xs.len() - 1) * (var / n).sqrt()),
    )
}
