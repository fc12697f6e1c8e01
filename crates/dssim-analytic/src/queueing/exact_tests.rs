#![allow(clippy::needless_range_loop)]

use super::mva::{mva_exact, mva_schweitzer};
use super::*;

/// M/M/c/K by brute force: the truncated chain summed state by state.
fn brute(lambda: f64, s: f64, c: usize, k: usize) -> (f64, f64) {
    let mut w = vec![1.0f64];
    for n in 1..=k {
        let prev = w[n - 1];
        w.push(prev * lambda * s / n.min(c) as f64);
    }
    let t: f64 = w.iter().sum();
    let lq: f64 = (0..=k).map(|n| n.saturating_sub(c) as f64 * w[n] / t).sum();
    (lq, w[k] / t)
}

#[test]
fn mmck_is_its_birth_death_chain() {
    // The issue's case: M/M/3 with 5 waiting places, 10 ms, 270/s: 1.485 waiting and
    // 16.01 ms; at 390/s (offered 1.3 per server) 2.943 waiting, 26.5% refused.
    for (lambda, room) in [
        (270.0, 5u64),
        (390.0, 5),
        (100.0, 0),
        (290.0, 40),
        (2000.0, 3),
    ] {
        let rates: Vec<f64> = (1..=3).map(|j| f64::from(j) / 0.01).collect();
        let b = BirthDeath::solve(lambda, &rates, Some(room)).unwrap();
        let (lq, block) = brute(lambda, 0.01, 3, 3 + room as usize);
        assert!(
            (b.waiting - lq).abs() < 1e-9 * (1.0 + lq),
            "{lambda} {room}: {b:?} {lq}"
        );
        assert!(
            (b.refused - block).abs() < 1e-12,
            "{lambda} {room}: {b:?} {block}"
        );
    }
    let b = BirthDeath::solve(270.0, &[100.0, 200.0, 300.0], Some(5)).unwrap();
    let w_ms = 1e3 * (b.waiting / (270.0 * (1.0 - b.refused)) + 0.01);
    assert!(
        (b.waiting - 1.485).abs() < 1e-3 && (w_ms - 16.01).abs() < 0.01,
        "{w_ms}"
    );
    // Room 0 is Erlang's loss system: the standard table's 5 erlangs on 10 lines, B = 0.01838.
    let rates: Vec<f64> = (1..=10).map(f64::from).collect();
    let loss = BirthDeath::solve(5.0, &rates, Some(0)).unwrap();
    assert!(
        (loss.refused - 0.01838).abs() < 5e-5 && (loss.refused - erlang_b(10, 5.0)).abs() < 1e-12
    );
    // Unbounded room is M/M/c: Erlang C.
    let mmc = BirthDeath::solve(270.0, &[100.0, 200.0, 300.0], None).unwrap();
    assert!((mmc.waiting / 270.0 - mmc_wait(3, 270.0, 0.01)).abs() < 1e-12);
    assert!(BirthDeath::solve(300.0, &[100.0, 200.0, 300.0], None).is_none());
    // A huge room past saturation stays finite.
    let big = BirthDeath::solve(600.0, &[100.0, 200.0, 300.0], Some(1_000_000)).unwrap();
    assert!(
        (big.refused - 0.5).abs() < 1e-9 && big.waiting.is_finite(),
        "{big:?}"
    );
}

#[test]
fn mm1_with_a_deadline_matches_the_issue_and_a_direct_integration() {
    // deadline(5ms) at 900/s on one exp(1 ms) server: served requests spend 2.79 ms.
    let d = mmc_deadline(1, 900.0, 0.001, 0.005).unwrap();
    let sojourn_ms = 1e3 * (d.wait_s + 0.001);
    assert!((sojourn_ms - 2.7877).abs() < 1e-3, "{sojourn_ms} {d:?}");
    // No deadline to speak of: M/M/c.
    let far = mmc_deadline(3, 270.0, 0.01, 10.0).unwrap();
    assert!((far.wait_s - mmc_wait(3, 270.0, 0.01)).abs() < 1e-9 && far.served > 1.0 - 1e-12);
    // Overloaded (θ < 0): still a steady state; carried work below c.
    let over = mmc_deadline(2, 500.0, 0.01, 0.02).unwrap();
    assert!(
        over.busy < 2.0 && over.busy > 1.5 && over.wait_s < 0.02,
        "{over:?}"
    );
    // Deadline 0: served only when a worker is free, Erlang B.
    let zero = mmc_deadline(4, 320.0, 0.01, 0.0).unwrap();
    assert!(
        (1.0 - zero.served - erlang_b(4, 3.2)).abs() < 1e-12,
        "{zero:?}"
    );
}

#[test]
fn round_robin_over_three_is_e3_m1() {
    // 240/s over 3 exp(10 ms) servers in turn: E3/M/1 at ρ = 0.8, sojourn 34.59 ms.
    let w = ekm1_wait(3, 240.0, 0.01);
    assert!(((w + 0.01) * 1e3 - 34.59).abs() < 0.01, "{w}");
    // k = 1 is M/M/1.
    assert!((ekm1_wait(1, 80.0, 0.01) - mmc_wait(1, 80.0, 0.01)).abs() < 1e-12);
}

/// Buzen's convolution for one class: the normalising constants G(n) of stations with
/// rates α, then X(N) = G(N−1)/G(N) (with the think time as a delay station).
fn buzen(stations: &[Station], d: &[f64], z: f64, n: usize) -> f64 {
    let mut g = vec![0.0f64; n + 1];
    // delay (think): z^j / j!
    let mut t = 1.0;
    for j in 0..=n {
        if j > 0 {
            t *= z / j as f64;
        }
        g[j] = t;
    }
    for (s, dk) in stations.iter().zip(d) {
        let f = |j: usize| -> f64 {
            let mut v = 1.0;
            for i in 1..=j {
                let a = s
                    .rates
                    .get(i - 1)
                    .or(s.rates.last())
                    .copied()
                    .unwrap_or(i as f64);
                v *= dk / a;
            }
            v
        };
        let old = g.clone();
        for m in 0..=n {
            g[m] = (0..=m).map(|j| f(j) * old[m - j]).sum();
        }
    }
    g[n - 1] / g[n]
}

#[test]
fn mva_matches_the_issue_machine_repairman_and_convolution() {
    // 9 users thinking 40 ms at one exp(5 ms) server: X = 165.37/s, R = 14.42 ms.
    let one = mva(&[Station::servers(1)], &[vec![0.005]], &[0.040], &[9]);
    let r = one.residence[0][0];
    assert!((one.throughput[0] - 165.37).abs() < 0.01 && (r * 1e3 - 14.423).abs() < 1e-3);
    let solo = mva(&[Station::servers(1)], &[vec![0.005]], &[0.040], &[1]);
    assert!((solo.residence[0][0] - 0.005).abs() < 1e-15);
    // Single class, a 3-server station, a single server and a delay: Buzen's
    // convolution agrees to 1e-9.
    let st = [
        Station::servers(3),
        Station::servers(1),
        Station { rates: vec![] },
    ];
    let d = [0.030, 0.008, 0.050];
    for n in [1usize, 2, 5, 17, 60] {
        let m = mva(&st, &[d.to_vec()], &[0.1], &[n as u64]);
        let x = buzen(&st, &d, 0.1, n);
        assert!(
            (m.throughput[0] - x).abs() < 1e-9 * x,
            "{n}: {} vs {x}",
            m.throughput[0]
        );
        // Little: N = X (Z + Σ R).
        let cycle: f64 = 0.1 + m.residence[0].iter().sum::<f64>();
        assert!((m.throughput[0] * cycle - n as f64).abs() < 1e-9);
    }
    // Two classes: with the same demands they are one class of the summed population.
    let two = mva(&st, &[d.to_vec(), d.to_vec()], &[0.1, 0.1], &[7, 10]);
    let merged = mva(&st, &[d.to_vec()], &[0.1], &[17]);
    let x2 = two.throughput[0] + two.throughput[1];
    assert!(
        (x2 - merged.throughput[0]).abs() < 1e-9 * x2,
        "{x2} {merged:?}"
    );
    assert!((two.throughput[0] / two.throughput[1] - 0.7).abs() < 1e-9);
}

#[test]
fn a_pool_without_outside_work_is_mmc() {
    // No time outside the pool: m busy workers are m requests at an M/M/2 pool.
    let f = pool_fes(0.0, 0.006, 2, 6);
    for (m, (x, w)) in f.iter().enumerate() {
        assert!((x - m.min(2) as f64 / 0.006).abs() < 1e-9, "{m}: {x}");
        assert!((w - m.saturating_sub(2) as f64).abs() < 1e-9, "{m}: {w}");
    }
    // With outside work the pool's throughput matches the network's convolution.
    let f = pool_fes(0.004, 0.006, 2, 4);
    let st = [Station { rates: vec![] }, Station::servers(2)];
    for m in 1..=4usize {
        let x = buzen(&st, &[0.004, 0.006], 0.0, m);
        assert!((f[m].0 - x).abs() < 1e-9 * x, "{m}: {} vs {x}", f[m].0);
    }
}

#[test]
fn the_pool_chain_is_mmc_without_outside_work_and_little_holds() {
    // Almost no work outside the pool: M/M/2 on the connections (Erlang C).
    let ch = pool_chain(250.0, 1e-7, 0.006, 2, 12, None).unwrap();
    let lq = 250.0 * mmc_wait(2, 250.0, 0.006);
    assert!(
        (ch.pool_waiting + ch.waiting - lq).abs() < 1e-3 * lq,
        "{ch:?} {lq}"
    );
    // Little's law: busy workers = carried × (outside + pool wait + call).
    let ch = pool_chain(250.0, 0.004, 0.006, 2, 4, Some(20)).unwrap();
    let carried = 250.0 * (1.0 - ch.refused);
    let hold = 0.004 + ch.pool_waiting / carried + 0.006;
    assert!((ch.busy - carried * hold).abs() < 1e-9, "{ch:?}");
    assert!((ch.present - ch.busy - ch.waiting).abs() < 1e-12);
}

#[test]
fn schweitzer_bard_is_close_for_large_populations() {
    let st = [Station::servers(1), Station::servers(4)];
    let d = vec![0.002, 0.010];
    let exact = mva_exact(&st, std::slice::from_ref(&d), &[0.5], &[400]);
    let approx = mva_schweitzer(&st, &[d], &[0.5], &[400]);
    let rel = (approx.throughput[0] - exact.throughput[0]).abs() / exact.throughput[0];
    assert!(rel < 0.02, "{rel}");
}
