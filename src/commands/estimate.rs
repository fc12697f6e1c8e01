//! `dssim estimate`: the traffic calculator (`--users`) and the back-of-envelope figures
//! of a model, per sweep point.

use std::path::Path;

use dssim_lab::{Diagnostic, LabError};

use super::load;
use crate::args::EstimateArgs;

/// Prints the traffic calculator's figures, a model's estimate, or both.
pub(crate) fn execute(args: EstimateArgs) -> Result<u8, LabError> {
    let EstimateArgs {
        file,
        set,
        users,
        data_gb,
        months,
        backups,
        replication,
        explain,
        ..
    } = args;
    if let Some(users) = users {
        let t = dssim_lab::estimate::Traffic {
            users,
            active: args.active,
            requests_per_user: args.requests_per_user,
            peak_share: args.peak_share,
            peak_hours: args.peak_hours,
            bytes_per_request: args.bytes_per_request,
            rows_per_user_day: args.rows_per_user_day,
            row_bytes: args.row_bytes,
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
