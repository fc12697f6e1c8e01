//! Queueing theory checks (see validation.md): the simulator must reproduce known results.
//!
//! Each check runs R independent replications with fixed seeds, takes one estimate per
//! replication from the output files, and compares their mean with theory within
//! `SIGMAS` standard errors (see [`crate::support::SIGMAS`] for why that is a sound
//! tolerance). Warm-ups are many relaxation times long, so the initial-transient bias is
//! far below the standard error. Time scales are chosen short (service times of a
//! millisecond) so a run of ~10^6 customers takes a fraction of a second.
//!
//! Latency means come from HDR histograms with 3 significant digits: a relative
//! quantization error of at most 0.05%, far below every tolerance here.

use crate::support::{
    assert_agrees, erlang_c, num, read_csv, run_ok, tmp_dir, users_to_app, write,
};

/// An experiment with an inline single-service model.
fn experiment(head: &str, client: &str, service: &str) -> String {
    format!(
        "{head}\n\n[model]\n[[model.clients]]\nname = \"users\"\ntarget = \"server\"\n{client}\n\n\
         [[model.services]]\nname = \"server\"\n{service}\n"
    )
}

/// Runs `text` and returns the rows of runs.csv and components.csv.
fn run(tag: &str, text: &str) -> (Vec<crate::support::Row>, Vec<crate::support::Row>) {
    let dir = tmp_dir(tag);
    let file = write(&dir, "exp.toml", text);
    let out = dir.join("out");
    run_ok(&file, &out, &["--jobs", "2"]);
    let runs = read_csv(&out.join("runs.csv"));
    let comps = read_csv(&out.join("components.csv"));
    let _ = std::fs::remove_dir_all(&dir);
    (runs, comps)
}

fn column(rows: &[crate::support::Row], col: &str) -> Vec<f64> {
    rows.iter().map(|r| num(r, col)).collect()
}

/// M/M/1 at rho = 0.7: sojourn ~ Exp(mu - lambda), so mean 1/(mu - lambda) and
/// p99 = ln(100)/(mu - lambda).
///
/// lambda = 700/s, mu = 1000/s: mean 3.333 ms, p99 15.35 ms. Relaxation time
/// 1/(mu (1 - sqrt(rho))^2) = 37 ms, so a 1 s warm-up is 27 of them. 20 replications of
/// 200 s hold 2.8 M customers: strong autocorrelation at rho = 0.7 leaves a standard error
/// near 0.45% on the mean and 0.9% on p99 (4-se tolerances near 2% and 4%).
#[test]
fn mm1_mean_and_p99_sojourn() {
    let text = experiment(
        "name = \"mm1\"\nduration = \"201s\"\nwarmup = \"1s\"\nseed = 11\nreplications = 20",
        "arrival = \"poisson\"\nrate = 700",
        "workers = 1\nservice_time = \"exp(1ms)\"",
    );
    let (runs, _) = run("mm1", &text);
    assert_eq!(runs.len(), 20);
    for r in &runs {
        assert_eq!(num(r, "requests"), num(r, "ok"), "every request ends ok");
    }
    let gap = 1000.0 - 700.0; // mu - lambda, per second
    assert_agrees(
        "M/M/1 mean sojourn (ms)",
        &column(&runs, "latency_mean_ms"),
        1000.0 / gap,
        0.05,
    );
    assert_agrees(
        "M/M/1 p99 sojourn (ms)",
        &column(&runs, "p99_ms"),
        1000.0 * 100f64.ln() / gap,
        0.05,
    );
    // The median too: ln(2)/(mu - lambda).
    assert_agrees(
        "M/M/1 p50 sojourn (ms)",
        &column(&runs, "p50_ms"),
        1000.0 * 2f64.ln() / gap,
        0.05,
    );
}

/// The formula itself against the check value of validation.md: A = 10 Erl, c = 14,
/// mean service 180 s: P(wait) = 0.1741, mean wait 7.836 s.
#[test]
fn erlang_c_formula_matches_the_published_check_value() {
    let c = erlang_c(14, 10.0);
    assert!((c - 0.1741).abs() < 5e-5, "P(wait) = {c}");
    let mu = 1.0 / 180.0;
    let lambda = 10.0 * mu;
    let wq = c / (14.0 * mu - lambda);
    assert!((wq - 7.836).abs() < 5e-4, "Wq = {wq}");
}

/// M/M/c mean wait against Erlang C, at the published point A = 10 Erl, c = 14, with time
/// scaled by 1e-5 (service exp(1.8 ms) instead of 180 s): Wq = 7.836 s x 1e-5 = 78.36 us.
///
/// Two estimates per replication: (a) Lq / lambda from the time-averaged queue length of
/// components.csv (Little's law for the queue), the lower-variance one; (b) latency_mean
/// minus the mean service time, whose variance includes the service-time noise (se of
/// 1.8 ms / sqrt(89 000) per replication, about 8% of Wq), hence its looser bound.
/// 20 replications of 16 s hold 1.8 M customers.
#[test]
fn mmc_mean_wait_matches_erlang_c() {
    let s_ms = 1.8;
    let lambda = 10.0 / (s_ms / 1000.0); // 5555.6/s: 10 Erlangs
    let text = experiment(
        "name = \"mmc\"\nduration = \"16.5s\"\nwarmup = \"0.5s\"\nseed = 5\nreplications = 20",
        &format!("arrival = \"poisson\"\nrate = {lambda}"),
        "workers = 14\nservice_time = \"exp(1.8ms)\"",
    );
    let (runs, comps) = run("mmc", &text);
    let c = erlang_c(14, 10.0);
    let mu = 1000.0 / s_ms;
    let wq_ms = 1000.0 * c / (14.0 * mu - lambda);
    let via_queue: Vec<f64> = comps
        .iter()
        .map(|r| 1000.0 * num(r, "mean_queue") / lambda)
        .collect();
    assert_agrees(
        "M/M/14 mean wait via Lq/lambda (ms)",
        &via_queue,
        wq_ms,
        0.1,
    );
    let via_latency: Vec<f64> = column(&runs, "latency_mean_ms")
        .into_iter()
        .map(|w| w - s_ms)
        .collect();
    assert_agrees(
        "M/M/14 mean wait via W - E[S] (ms)",
        &via_latency,
        wq_ms,
        0.25,
    );
    // Utilization is lambda E[S] / c = 10/14.
    assert_agrees(
        "M/M/14 utilization",
        &column(&comps, "utilization"),
        10.0 / 14.0,
        0.02,
    );
}

/// M/M/1/K (K = most in system: one worker and K - 1 waiting places): by PASTA the share of
/// arrivals shed is P_K = (1 - rho) rho^K / (1 - rho^(K+1)), and the mean sojourn of the
/// accepted ones is W = L / (lambda (1 - P_K)). Swept over rho = 0.9 and an overloaded
/// rho = 1.5 (a finite buffer keeps it stable).
#[test]
fn mm1k_blocking_probability() {
    const K: i32 = 5;
    let text = experiment(
        "name = \"mm1k\"\nduration = \"21s\"\nwarmup = \"1s\"\nseed = 3\nreplications = 20\n\
         [sweep]\n\"clients.users.rate\" = [900, 1500]",
        "arrival = \"poisson\"\nrate = 900",
        &format!(
            "workers = 1\nqueue = {}\nservice_time = \"exp(1ms)\"",
            K - 1
        ),
    );
    let (runs, _) = run("mm1k", &text);
    assert_eq!(runs.len(), 40);
    for (point, lambda) in [(0, 900.0), (1, 1500.0)] {
        let rows: Vec<_> = runs
            .iter()
            .filter(|r| r["point"] == point.to_string())
            .cloned()
            .collect();
        let rho: f64 = lambda / 1000.0;
        let norm = (1.0 - rho) / (1.0 - rho.powi(K + 1));
        let p = |n: i32| norm * rho.powi(n);
        let pk = p(K);
        let l: f64 = (0..=K).map(|n| f64::from(n) * p(n)).sum();
        let w_ms = 1000.0 * l / (lambda * (1.0 - pk));
        let blocked: Vec<f64> = rows
            .iter()
            .map(|r| num(r, "shed") / num(r, "requests"))
            .collect();
        assert_agrees(&format!("M/M/1/{K} P_K at rho={rho}"), &blocked, pk, 0.05);
        assert_agrees(
            &format!("M/M/1/{K} mean sojourn at rho={rho} (ms)"),
            &column(&rows, "latency_mean_ms"),
            w_ms,
            0.05,
        );
    }
}

/// M/G/1 against Pollaczek-Khinchine, Wq = E[S] rho (1 + SCV) / (2 (1 - rho)): M/D/1
/// (SCV = 0, the required case) and M/E4/1 (Erlang-4, SCV = 1/4) at rho = 0.8, E[S] = 1 ms.
/// Wq = 2 ms and 2.5 ms. With constant service, latency_mean - 1 ms is the mean wait
/// exactly; with Erlang service the service-time noise is in the replication variance.
#[test]
fn mg1_mean_wait_matches_pollaczek_khinchine() {
    let text = experiment(
        "name = \"md1\"\nduration = \"41s\"\nwarmup = \"1s\"\nseed = 7\nreplications = 10\n\
         [sweep]\n\"services.server.service_time\" = [\"const(1ms)\", \"erlang(4, 1ms)\"]",
        "arrival = \"poisson\"\nrate = 800",
        "workers = 1\nservice_time = \"const(1ms)\"",
    );
    let (runs, _) = run("mg1", &text);
    assert_eq!(runs.len(), 20);
    let rho = 0.8;
    for (point, scv, label) in [(0, 0.0, "M/D/1"), (1, 0.25, "M/E4/1")] {
        let waits: Vec<f64> = runs
            .iter()
            .filter(|r| r["point"] == point.to_string())
            .map(|r| num(r, "latency_mean_ms") - 1.0)
            .collect();
        let wq = rho * (1.0 + scv) / (2.0 * (1.0 - rho));
        assert_agrees(&format!("{label} mean wait (ms)"), &waits, wq, 0.06);
    }
}

/// Little's law, L = lambda W, from the time series: the time-averaged number of requests
/// in flight (client side, network transit included) over the measured window against
/// throughput x mean latency, on two instances of two workers behind a network with latency.
///
/// On one sample path the two sides differ only by boundary terms: the time inside the
/// window of requests sent before it, minus the time after it of requests sent inside it.
/// Each is the residual sojourn summed over the few requests in flight at a window edge,
/// of order L x W; relative to L x T it is of order W / T (here 4 ms / 30 s ~ 1.3e-4).
/// The tolerance allows 8 W / T for the boundary terms plus 1e-3 for the histogram's
/// quantization of the mean; a miscounted gauge or latency would miss it by far more.
#[test]
fn littles_law_holds_on_the_time_series() {
    let text = "name = \"little\"\nduration = \"31s\"\nwarmup = \"1s\"\nseed = 2\n\
        [output]\ntimeseries = \"500ms\"\n\n[model]\n\
        [[model.clients]]\nname = \"users\"\ntarget = \"app\"\narrival = \"poisson\"\nrate = 1500\n\n\
        [[model.services]]\nname = \"app\"\ninstances = 2\nworkers = 2\nservice_time = \"exp(2ms)\"\n\n\
        [model.network]\nlatency = \"uniform(0.2ms, 0.6ms)\"\n";
    let dir = tmp_dir("little");
    let file = write(&dir, "exp.toml", text);
    let out = dir.join("out");
    run_ok(&file, &out, &["--jobs", "1"]);
    let run = &read_csv(&out.join("runs.csv"))[0];
    let series = read_csv(&out.join("timeseries.csv"));
    let window: Vec<f64> = series
        .iter()
        .filter(|r| num(r, "t_s") >= 1.0 - 1e-9)
        .map(|r| num(r, "in_flight"))
        .collect();
    assert_eq!(window.len(), 60, "30 s of 500 ms rows after the warm-up");
    let l = window.iter().sum::<f64>() / window.len() as f64;
    let x = num(run, "throughput_rps");
    let w_s = num(run, "latency_mean_ms") / 1000.0;
    assert_eq!(num(run, "requests"), num(run, "ok"));
    let tol = 8.0 * w_s / 30.0 + 1e-3;
    eprintln!(
        "Little: L = {l:.5}, lambda W = {:.5}, rel diff {:+.4}% (tolerance {:.3}%)",
        x * w_s,
        100.0 * (l - x * w_s) / l,
        100.0 * tol
    );
    assert!(
        ((l - x * w_s) / l).abs() <= tol,
        "L = {l} but lambda W = {x} x {w_s} = {}",
        x * w_s
    );
    // Sanity: two M/M/2 queues at rho = 0.75 hold about 6.9 requests, transit about 1.2.
    assert!(l > 6.0 && l < 10.0, "L = {l}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Non-preemptive priority M/M/1 (Cobham 1954): with the classes served most urgent first,
/// class k waits W_k = W0 / ((1 - σ_{k-1})(1 - σ_k)), W0 = Σ λ_i E[S_i²] / 2, σ_k the load
/// of classes 1..k. Jobs reach the queue as a Poisson stream: the producer is an M/D/∞
/// stage (1,000 workers, 1 ms each), whose output is Poisson. λ = 200/s, E[S] = 4 ms
/// (exponential, E[S²] = 32 ms²): ρ = 0.8, W0 = 3.2 ms; 25% high, 75% low:
/// W_high = 3.2 / 0.8 = 4 ms, W_low = 3.2 / (0.8 × 0.2) = 20 ms; the offer-to-success times
/// are 8 and 24 ms (FIFO would give every job 20 ms). 20 replications of 60 s.
#[test]
fn priority_job_queue_matches_cobham() {
    use crate::support::HDR_RESOLUTION;
    use crate::support::{assert_theory, component, model, replicate, Estimate, Plan};
    let m = model(&users_to_app(
        200,
        &["read_ratio = 0.0"],
        r#"
workers = 1000
service_time = "const(1ms)"

[[queues]]
name = "jobs"
producer = "app"
workers = 1
job_time = "exp(4ms)"
priorities = [{ name = "high", share = 0.25 }, { name = "low", share = 0.75 }]
"#,
    ));
    let reports = replicate(&m, Plan::new(2, 62, 20, 15_000));
    let (lambda, es, es2) = (0.2, 4.0, 32.0); // per ms, ms, ms²
    let w0 = lambda * es2 / 2.0;
    let (s1, s2) = (0.25 * lambda * es, lambda * es);
    let theory = [
        ("high", es + w0 / (1.0 - s1)),
        ("low", es + w0 / ((1.0 - s1) * (1.0 - s2))),
    ];
    for (class, t) in theory {
        let name = format!("jobs.{class}");
        let est = Estimate::over(&reports, |r| {
            component(r, &name).mean_ms.expect("the class served jobs")
        });
        assert_theory(
            &format!("priority M/M/1, {class} class mean sojourn (ms)"),
            est,
            t,
            HDR_RESOLUTION,
            0.1,
        );
    }
    // The estimate's class rows are Cobham's formula (exact for M/G/1), and say so.
    let est = dssim_lab::estimate::estimate(&m);
    for (class, t) in theory {
        let row = est
            .get(&format!("jobs.{class}"))
            .expect("a prediction per class");
        let predicted = row.sojourn_ms.expect("a predicted time");
        assert!(
            (predicted - t).abs() < 1e-9 * t,
            "{class}: {predicted} vs {t}"
        );
        assert!(row.method.contains("Cobham"), "{}", row.method);
    }
    // The share of each class is what was configured.
    let share = Estimate::over(&reports, |r| {
        component(r, "jobs.high").requests as f64 / component(r, "jobs").requests as f64
    });
    assert_theory("share of high-priority jobs", share, 0.25, 0.0, 0.02);
}
