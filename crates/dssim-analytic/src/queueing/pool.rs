//! A pool of connections shared by more workers than connections: the flow-equivalent
//! server of the workers' loop and the exact chain of the pool.

use super::mva::ld_residence;

/// A pool of `conns` connections shared by `workers` workers, each of which, while it
/// holds a request, works `outside_s` on its own (a delay) and then needs a connection for
/// `call_s` (FCFS, exponential): for m = 0..=workers busy workers, the requests they
/// complete per second and the mean number of them waiting for a connection — the closed
/// network solved by exact MVA for every population, i.e. the flow-equivalent server
/// (Chandy, Herzog & Woo 1975) of the workers' loop, exact for product-form networks.
#[allow(clippy::needless_range_loop)] // index arithmetic over stations and classes
pub fn pool_fes(outside_s: f64, call_s: f64, conns: u32, workers: u32) -> Vec<(f64, f64)> {
    let c = conns.max(1) as usize;
    let mut out = vec![(0.0, 0.0)];
    let mut q = 0.0f64;
    let mut p = vec![0.0f64; c];
    p[0] = 1.0;
    for m in 1..=workers.max(1) as usize {
        let rates: Vec<f64> = (1..=c).map(|j| j as f64).collect();
        let r = call_s * ld_residence(&rates, q, &p);
        let x = m as f64 / (outside_s + r);
        q = x * r;
        let mut np = vec![0.0f64; c];
        for j in 1..c {
            np[j] = call_s * x * p[j - 1] / j as f64;
        }
        let u = x * call_s;
        let below: f64 = (1..c).map(|j| j as f64 * np[j]).sum();
        let at_c = ((u - below) / c as f64).max(0.0);
        np[0] = (1.0 - np[1..].iter().sum::<f64>() - at_c).max(0.0);
        p = np;
        // Waiting = queue − connections in use (X·call).
        out.push((x, (q - u).max(0.0)));
    }
    out
}

/// What [`pool_chain`] finds for one instance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolChain {
    /// Mean requests waiting for a worker.
    pub waiting: f64,
    /// Mean requests waiting for a connection.
    pub pool_waiting: f64,
    /// Mean busy workers.
    pub busy: f64,
    /// Share of arrivals refused (a full waiting room).
    pub refused: f64,
    /// Mean requests in the instance.
    pub present: f64,
}

/// The first `rows` rows of the inverse of the `n` × `n` matrix `a` (row-major, consumed),
/// by Gauss–Jordan elimination with partial pivoting, written row-major into `out`
/// (`rows` × `n`); `inv` is scratch of `n` × `n`. False when `a` is singular.
fn inverse_rows(a: &mut [f64], n: usize, rows: usize, inv: &mut [f64], out: &mut Vec<f64>) -> bool {
    inv[..n * n].iter_mut().for_each(|x| *x = 0.0);
    for i in 0..n {
        inv[i * n + i] = 1.0;
    }
    for col in 0..n {
        let mut piv = col;
        for r in col + 1..n {
            if a[r * n + col].abs() > a[piv * n + col].abs() {
                piv = r;
            }
        }
        if a[piv * n + col].abs() < 1e-300 {
            return false;
        }
        if piv != col {
            for j in 0..n {
                a.swap(col * n + j, piv * n + j);
                inv.swap(col * n + j, piv * n + j);
            }
        }
        let d = a[col * n + col];
        // Columns before `col` of `a` are already eliminated (zero off the diagonal).
        for j in col..n {
            a[col * n + j] /= d;
        }
        for j in 0..n {
            inv[col * n + j] /= d;
        }
        for i in 0..n {
            if i == col {
                continue;
            }
            let f = a[i * n + col];
            if f == 0.0 {
                continue;
            }
            let (pa, ra) = rows_pair(a, n, col, i);
            for j in col..n {
                ra[j] -= f * pa[j];
            }
            let (pi, ri) = rows_pair(inv, n, col, i);
            for j in 0..n {
                ri[j] -= f * pi[j];
            }
        }
    }
    out.clear();
    out.extend_from_slice(&inv[..rows * n]);
    true
}

/// Rows `p` (shared) and `i` (mutable, `i != p`) of a row-major matrix of width `n`.
fn rows_pair(m: &mut [f64], n: usize, p: usize, i: usize) -> (&[f64], &mut [f64]) {
    if p < i {
        let (lo, hi) = m.split_at_mut(i * n);
        (&lo[p * n..p * n + n], &mut hi[..n])
    } else {
        let (lo, hi) = m.split_at_mut(p * n);
        (&hi[..n], &mut lo[i * n..i * n + n])
    }
}

/// Most (levels × block³) the exact chain of [`pool_chain`] works through.
const POOL_CHAIN_WORK: f64 = 3e7;

/// One instance of `workers` workers sharing `conns` connections, fed Poisson arrivals at
/// `lambda`: a request takes a worker (or waits for one, at most `room` waiting), works
/// `outside_s` (exponential) on its own, then holds a connection (FCFS, exponential
/// `call_s`) and leaves. Solved exactly as the Markov chain on (requests in the instance,
/// requests at the pool) by linear level reduction (block Gaussian elimination from the top
/// level, Gaver, Jacobs & Latouche 1984); the chain is cut where the tail is below 1e-13.
/// `None` when it has no steady state or is too large to solve this way (then the
/// flow-equivalent server, [`pool_fes`], stands in).
#[allow(clippy::needless_range_loop)] // index arithmetic over stations and classes
pub fn pool_chain(
    lambda: f64,
    outside_s: f64,
    call_s: f64,
    conns: u32,
    workers: u32,
    room: Option<u64>,
) -> Option<PoolChain> {
    let c = workers.max(1) as usize;
    let p = conns.max(1) as usize;
    if !(lambda > 0.0 && outside_s > 0.0 && call_s > 0.0 && lambda.is_finite()) {
        return None;
    }
    let top_rate = pool_fes(outside_s, call_s, conns, workers)
        .last()
        .map_or(0.0, |x| x.0);
    let levels = match room {
        Some(q) => c as u64 + q,
        None => {
            let r = lambda / top_rate;
            if r >= 1.0 {
                return None;
            }
            c as u64 + ((1e-13f64).ln() / r.ln()).ceil().max(1.0) as u64
        }
    };
    let b = (c + 1) as f64;
    if levels as f64 * b * b * b > POOL_CHAIN_WORK {
        return None;
    }
    let n_top = levels as usize;
    let size = |n: usize| n.min(c) + 1;
    // Level n holds (n requests, k of them at the pool), k = 0..=min(n, c). Up: level n →
    // n+1, k → k at λ. Down: level n → n−1, k → k−1 at min(k, p)/call. Local: k → k+1 at
    // (busy − k)/outside. Linear level reduction keeps R_n with π_n = π_{n−1} R_n: with
    // A_n the top-down reduced local block of level n, R_n = −λ·(the first size(n−1) rows
    // of A_n⁻¹) (the up block is λ times the identity), and A_{n−1} = L_{n−1} + R_n·D_n,
    // where D_n has one entry per row (a column shift). Matrices are flat, row-major, and
    // their buffers reused level to level.
    let down_rate = |k: usize| k.min(p) as f64 / call_s;
    let local_into = |n: usize, m: &mut Vec<f64>| {
        let a = size(n);
        let busy = n.min(c);
        m.clear();
        m.resize(a * a, 0.0);
        for k in 0..a {
            let cpu = (busy - k) as f64 / outside_s;
            let out = if n < n_top { lambda } else { 0.0 } + cpu + down_rate(k);
            if k + 1 < a {
                m[k * a + k + 1] = cpu;
            }
            m[k * a + k] = -out;
        }
    };
    let b_max = c + 1;
    let mut rs: Vec<Vec<f64>> = vec![Vec::new(); n_top + 1];
    let mut acc = Vec::with_capacity(b_max * b_max);
    let mut scratch = vec![0.0; b_max * b_max];
    local_into(n_top, &mut acc);
    for n in (1..=n_top).rev() {
        let (a, below) = (size(n), size(n - 1));
        let mut r = std::mem::take(&mut rs[n]);
        if !inverse_rows(&mut acc, a, below, &mut scratch, &mut r) {
            return None;
        }
        r.iter_mut().for_each(|x| *x *= -lambda);
        if n > 1 {
            local_into(n - 1, &mut acc);
            // (R_n·D_n)[i][j] = R_n[i][j+1]·min(j+1, p)/call.
            for i in 0..below {
                for j in 0..below {
                    if j + 1 < a {
                        acc[i * below + j] += r[i * a + j + 1] * down_rate(j + 1);
                    }
                }
            }
        }
        rs[n] = r;
    }
    let mut pi: Vec<Vec<f64>> = vec![vec![1.0]];
    for n in 1..=n_top {
        let prev = &pi[n - 1];
        let a = size(n);
        let mut v = vec![0.0; a];
        for (i, x) in prev.iter().enumerate() {
            if *x != 0.0 {
                let row = &rs[n][i * a..i * a + a];
                for (vj, rj) in v.iter_mut().zip(row) {
                    *vj += x * rj;
                }
            }
        }
        pi.push(v);
    }
    let total: f64 = pi.iter().flatten().sum();
    if !(total.is_finite() && total > 0.0) {
        return None;
    }
    let mut out = PoolChain {
        waiting: 0.0,
        pool_waiting: 0.0,
        busy: 0.0,
        refused: 0.0,
        present: 0.0,
    };
    for (n, level) in pi.iter().enumerate() {
        for (k, x) in level.iter().enumerate() {
            let q = x / total;
            out.waiting += q * n.saturating_sub(c) as f64;
            out.pool_waiting += q * k.saturating_sub(p) as f64;
            out.busy += q * n.min(c) as f64;
            out.present += q * n as f64;
            if room.is_some() && n == n_top {
                out.refused += q;
            }
        }
    }
    Some(out)
}
