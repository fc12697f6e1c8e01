use super::*;

#[test]
fn erlang_c_matches_the_published_example() {
    // A = 10 erlangs, 14 agents, 180 s handling time: P(wait) = 0.1741, mean wait 7.836 s.
    let p = erlang_c(14, 10.0);
    assert!((p - 0.1741).abs() < 5e-4, "{p}");
    let w = mmc_wait(14, 10.0 / 180.0, 180.0);
    assert!((w - 7.836).abs() < 0.01, "{w}");
}

fn node(usl: Option<(f64, f64)>, cap: Option<(u64, bool)>) -> LoadDependent {
    LoadDependent {
        base_s: 0.001,
        fixed_s: 0.0,
        usl,
        cap,
        outside_s: 0.0,
        cores: None,
    }
}

#[test]
fn a_node_without_contention_is_mg_infinity_erlang_loss_or_mgc() {
    // M/G/∞: 3.2 erlangs inside, no refusals.
    let inf = node(None, None).solve(3200.0).unwrap();
    assert!((inf.inside - 3.2).abs() < 1e-12 && inf.refused == 0.0);
    // M/G/4/4: Erlang B.
    let loss = node(None, Some((4, true))).solve(3200.0).unwrap();
    assert!((loss.refused - erlang_b(4, 3.2)).abs() < 1e-12);
    assert!((loss.inside - 3.2 * (1.0 - erlang_b(4, 3.2))).abs() < 1e-12);
    // Four slots upstream: stable below 4 erlangs; at 4,000/s the callers' slots run
    // out, not the node.
    let q = node(None, Some((4, false)));
    assert!((q.solve(3200.0).unwrap().inside - 3.2).abs() < 1e-12);
    assert!(q.solve(4000.0).is_none());
    assert!(q.saturation().is_infinite());
    assert!((q.callers_limit().unwrap() - 4000.0).abs() < 1e-9);
}

#[test]
fn a_usl_node_peaks_where_the_law_says() {
    // experiments/db-connections.toml: σ = 0.05, κ = 0.002, S = 1 ms: the peak is at
    // N* = √(0.95/0.002) ≈ 21.8 connections, about 7,400 requests/s.
    let n = node(Some((0.05, 0.002)), None);
    let peak = n.saturation();
    let best = (1..200).map(|k| n.rate(k)).fold(0.0, f64::max);
    assert!(
        peak >= best - 1e-9 && peak < best * 1.001,
        "{peak} vs {best}"
    );
    assert!((peak - 7400.0).abs() < 50.0, "{peak}");
    // Light load: almost one request at a time, barely stretched.
    let light = n.solve(100.0).unwrap();
    assert!(light.stretch < 1.01 && (light.sojourn_s - 0.001).abs() < 1e-4);
    // Callers with 64 slots push it past its peak: it saturates lower, at rate(64).
    let pushed = node(Some((0.05, 0.002)), Some((64, false)));
    assert!((pushed.saturation() - pushed.rate(64)).abs() < 1e-9);
    assert!(pushed.saturation() < peak * 0.8 && pushed.callers_limit().is_none());
    // With 8 slots the callers run out first.
    let few = node(Some((0.05, 0.002)), Some((8, false)));
    assert!((few.callers_limit().unwrap() - few.rate(8)).abs() < 1e-9);
    assert!((few.saturation() - peak).abs() < 1e-9);
    // Slots that also spend 1 ms outside: fewer inside when all are busy.
    let busy = LoadDependent {
        outside_s: 0.001,
        ..few
    };
    let inside = busy.pinned().unwrap().inside;
    assert!((inside + busy.pinned().unwrap().carried * 0.001 - 8.0).abs() < 1e-6 && inside < 8.0);
}

#[test]
fn a_load_dependent_node_never_returns_nan() {
    for usl in [
        None,
        Some((0.0, 0.0)),
        Some((0.5, 0.0)),
        Some((0.1, 1e-9)),
        Some((0.9, 10.0)),
    ] {
        for cap in [
            None,
            Some((1, true)),
            Some((1, false)),
            Some((u64::MAX, true)),
            Some((1 << 40, false)),
        ] {
            let lambdas = [0.0, 1e-9, 1.0, 1e3, 1e9, f64::INFINITY, f64::NAN];
            for (lambda, cores) in lambdas
                .into_iter()
                .flat_map(|l| [(l, None), (l, Some(1)), (l, Some(3))])
            {
                let n = LoadDependent {
                    base_s: 0.002,
                    fixed_s: 0.001,
                    usl,
                    cap,
                    outside_s: 0.003,
                    cores,
                };
                assert!(!n.saturation().is_nan());
                if let Some(x) = n.solve(lambda) {
                    assert!(
                        [
                            x.carried,
                            x.refused,
                            x.inside,
                            x.sojourn_s,
                            x.stretch,
                            x.wait_s
                        ]
                        .iter()
                        .all(|v| v.is_finite()),
                        "{usl:?} {cap:?} {lambda}: {x:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn small_cases_reduce_to_mm1() {
    // M/M/1: Wq = ρ/(μ−λ); P-K with exponential service gives the same.
    let (l, s) = (80.0, 0.01);
    let mm1 = 0.8 / (100.0 - 80.0);
    assert!((mmc_wait(1, l, s) - mm1).abs() < 1e-12);
    assert!((mg1_wait(l, s, 2.0 * s * s) - mm1).abs() < 1e-12);
    assert!((mm1k_blocking(0.5, 1) - 1.0 / 3.0).abs() < 1e-12);
}

#[test]
fn a_node_with_cores_is_mmc_mmck_or_its_usl_chain() {
    let cored = |usl, cap, cores| LoadDependent {
        base_s: 0.010,
        fixed_s: 0.0,
        usl,
        cap,
        outside_s: 0.0,
        cores: Some(cores),
    };
    let rates = |n: &LoadDependent, c: u64| (1..=c).map(|k| n.rate(k)).collect::<Vec<f64>>();
    // 3 cores, no connection limit: M/M/3 (Erlang C).
    let n = cored(None, None, 3);
    let x = n.solve(240.0).unwrap();
    let wq = mmc_wait(3, 240.0, 0.010);
    assert!((x.wait_s - wq).abs() < 1e-9 * wq, "{x:?} vs {wq}");
    assert!((x.sojourn_s - (wq + 0.010)).abs() < 1e-9);
    assert!((x.inside - 240.0 * (wq + 0.010)).abs() < 1e-6);
    assert!((n.saturation() - 300.0).abs() < 1e-9 && n.solve(300.0).is_none());
    // With max_connections = 8 (refused past it): M/M/3/8, the birth–death chain.
    let k = cored(None, Some((8, true)), 3);
    let x = k.solve(390.0).unwrap();
    let b = BirthDeath::solve(390.0, &rates(&k, 3), Some(5)).unwrap();
    assert!((x.refused - b.refused).abs() < 1e-12, "{x:?} {b:?}");
    assert!((x.inside - b.present).abs() < 1e-9 && (x.wait_s * x.carried - b.waiting).abs() < 1e-9);
    // Contention among the executing ones: rates e/(S·f(e)), flat past the cores.
    let u = cored(Some((0.05, 0.002)), None, 4);
    let x = u.solve(250.0).unwrap();
    let b = BirthDeath::solve(250.0, &rates(&u, 4), None).unwrap();
    assert!(
        (x.inside - b.present).abs() < 1e-9 * b.present,
        "{x:?} {b:?}"
    );
    assert!((x.wait_s * x.carried - b.waiting).abs() < 1e-9);
    // Cores at least the cap: no queue inside, as without cores.
    let wide = cored(None, Some((4, true)), 16);
    let plain = LoadDependent {
        cores: None,
        ..wide
    };
    let (a, b) = (wide.solve(320.0).unwrap(), plain.solve(320.0).unwrap());
    assert!((a.refused - b.refused).abs() < 1e-12 && a.wait_s == 0.0);
}

#[test]
fn expected_max_of_exponentials_is_h_n_times_the_mean() {
    for n in [1u32, 2, 3, 8, 10] {
        let f = |t: f64| (-t / 0.01).exp();
        let v: Vec<&dyn Fn(f64) -> f64> = (0..n).map(|_| &f as &dyn Fn(f64) -> f64).collect();
        let got = super::expected_max(&v, &vec![0.01; n as usize]);
        let want = super::max_of_exponentials(n, 0.01);
        assert!((got - want).abs() < 1e-4 * want, "{n}: {got} vs {want}");
    }
    // The M/M/c sojourn's mean is Wq + 1/μ.
    let f = |t: f64| super::mmc_sojourn_survival(4, 100.0, 0.02, t);
    let got = super::expected_max(&[&f], &[0.02]);
    let want = super::mmc_wait(4, 100.0, 0.02) + 0.02;
    assert!((got - want).abs() < 1e-4 * want, "{got} vs {want}");
}
