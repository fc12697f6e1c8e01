//! The table printed after `dssim run`: one row per sweep point, from the points.csv the
//! run just wrote (means over replications), with the figures that apply to the model.

use std::path::Path;

use dssim_lab::LabError;

/// The figures of one sweep point.
pub struct PointRow {
    /// Point id.
    pub point: usize,
    /// (swept path, value).
    pub swept: Vec<(String, String)>,
    /// Runs averaged.
    pub runs: usize,
    /// (column of points.csv, value) for each figure that applies to some point.
    pub figures: Vec<(&'static str, Option<f64>)>,
}

/// The figures: (points.csv column, header in the table, decimals).
const FIGURES: &[(&str, &str, usize)] = &[
    ("throughput_rps", "throughput/s", 1),
    ("p50_ms", "p50 ms", 2),
    ("p99_ms", "p99 ms", 2),
    ("failed", "failed %", 2),
    ("cache_hit_ratio", "hit ratio", 3),
    ("repl_lag_p99_ms", "lag p99 ms", 2),
];

/// Reads `out/points.csv` into rows (figures no point has are left out).
pub fn read(out: &Path) -> Result<Vec<PointRow>, LabError> {
    let path = out.join("points.csv");
    let mut rdr = csv::Reader::from_path(&path).map_err(|e| LabError::io(&path, e.to_string()))?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| LabError::io(&path, e.to_string()))?
        .iter()
        .map(String::from)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let runs_col = col("runs");
    // The swept columns sit between `point` and `runs`.
    let swept_cols: Vec<usize> = (1..runs_col.unwrap_or(1)).collect();
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| LabError::io(&path, e.to_string()))?;
        let num = |name: &str| -> Option<f64> {
            col(name)
                .and_then(|i| rec.get(i))
                .and_then(|s| s.parse::<f64>().ok())
        };
        let figures = FIGURES
            .iter()
            .map(|(c, _, _)| {
                let v = if *c == "failed" {
                    match (num("requests"), num("ok")) {
                        (Some(r), Some(ok)) if r > 0.0 => Some(100.0 * (r - ok) / r),
                        _ => None,
                    }
                } else {
                    num(c)
                };
                (*c, v)
            })
            .collect();
        rows.push(PointRow {
            point: rec.get(0).and_then(|s| s.parse().ok()).unwrap_or(0),
            swept: swept_cols
                .iter()
                .map(|&i| (header[i].clone(), rec.get(i).unwrap_or("").to_string()))
                .collect(),
            runs: runs_col
                .and_then(|i| rec.get(i))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            figures,
        });
    }
    // Leave out the figures that apply nowhere (no cache: no hit ratio).
    let applies: Vec<bool> = (0..FIGURES.len())
        .map(|i| rows.iter().any(|r| r.figures[i].1.is_some()))
        .collect();
    for r in &mut rows {
        let mut i = 0;
        r.figures.retain(|_| {
            i += 1;
            applies[i - 1]
        });
    }
    Ok(rows)
}

/// The table as text.
pub fn table(rows: &[PointRow]) -> String {
    let Some(first) = rows.first() else {
        return String::new();
    };
    let mut header: Vec<String> = vec!["point".into()];
    header.extend(first.swept.iter().map(|(p, _)| p.clone()));
    header.push("runs".into());
    header.extend(first.figures.iter().map(|(c, _)| {
        FIGURES
            .iter()
            .find(|f| f.0 == *c)
            .map_or(c.to_string(), |f| f.1.to_string())
    }));
    let mut lines: Vec<Vec<String>> = vec![header];
    for r in rows {
        let mut l = vec![r.point.to_string()];
        l.extend(r.swept.iter().map(|(_, v)| v.clone()));
        l.push(r.runs.to_string());
        l.extend(r.figures.iter().map(|(c, v)| {
            let dec = FIGURES.iter().find(|f| f.0 == *c).map_or(2, |f| f.2);
            v.map_or("-".into(), |v| format!("{v:.dec$}"))
        }));
        lines.push(l);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut o = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        o.push_str(cells.join("  ").trim_end());
        o.push('\n');
    }
    o
}

/// The same figures as JSON, for scripts.
pub fn json(name: &str, out: &Path, rows: &[PointRow]) -> String {
    let points: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut m = serde_json::Map::new();
            m.insert("point".into(), r.point.into());
            let swept: serde_json::Map<String, serde_json::Value> = r
                .swept
                .iter()
                .map(|(p, v)| (p.clone(), serde_json::Value::String(v.clone())))
                .collect();
            m.insert("swept".into(), swept.into());
            m.insert("runs".into(), r.runs.into());
            for (c, v) in &r.figures {
                let key = if *c == "failed" { "failed_pct" } else { c };
                m.insert(
                    key.to_string(),
                    v.map_or(serde_json::Value::Null, Into::into),
                );
            }
            m.into()
        })
        .collect();
    let v = serde_json::json!({
        "experiment": name,
        "out": out.display().to_string(),
        "points": points,
    });
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}
