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

type Mat = Vec<Vec<f64>>;

#[allow(clippy::needless_range_loop)] // index arithmetic over stations and classes
fn mat_mul(a: &Mat, b: &Mat) -> Mat {
    let (n, m) = (a.len(), b.first().map_or(0, Vec::len));
    let mut c = vec![vec![0.0; m]; n];
    for i in 0..n {
        for (k, bk) in b.iter().enumerate() {
            let x = a[i][k];
            if x != 0.0 {
                for j in 0..m {
                    c[i][j] += x * bk[j];
                }
            }
        }
    }
    c
}

/// Inverse by Gauss–Jordan with partial pivoting; `None` when singular.
fn mat_inv(a: &Mat) -> Option<Mat> {
    let n = a.len();
    let mut m: Mat = a.clone();
    let mut inv: Mat = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for col in 0..n {
        let piv = (col..n).max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs()))?;
        if m[piv][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, piv);
        inv.swap(col, piv);
        let d = m[col][col];
        for j in 0..n {
            m[col][j] /= d;
            inv[col][j] /= d;
        }
        for i in 0..n {
            if i != col && m[i][col] != 0.0 {
                let f = m[i][col];
                for j in 0..n {
                    m[i][j] -= f * m[col][j];
                    inv[i][j] -= f * inv[col][j];
                }
            }
        }
    }
    Some(inv)
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
    // Up: level n → n+1, k → k at λ. Down: level n → n−1, k → k−1 at min(k, p)/call.
    let up = |n: usize| -> Mat {
        let (a, b) = (size(n), size(n + 1));
        let mut m = vec![vec![0.0; b]; a];
        for (k, row) in m.iter_mut().enumerate() {
            row[k] = lambda;
        }
        m
    };
    let down = |n: usize| -> Mat {
        let (a, b) = (size(n), size(n - 1));
        let mut m = vec![vec![0.0; b]; a];
        for (k, row) in m.iter_mut().enumerate().skip(1) {
            row[k - 1] = k.min(p) as f64 / call_s;
        }
        m
    };
    let local = |n: usize| -> Mat {
        let a = size(n);
        let busy = n.min(c);
        let mut m = vec![vec![0.0; a]; a];
        for k in 0..a {
            let cpu = (busy - k) as f64 / outside_s;
            let out = if n < n_top { lambda } else { 0.0 } + cpu + k.min(p) as f64 / call_s;
            if k + 1 < a {
                m[k][k + 1] = cpu;
            }
            m[k][k] = -out;
        }
        m
    };
    // R_n with π_n = π_{n−1} R_n, from the top down.
    let mut rs: Vec<Mat> = vec![Vec::new(); n_top + 1];
    let neg = |m: Mat| -> Mat {
        m.into_iter()
            .map(|r| r.into_iter().map(|x| -x).collect())
            .collect()
    };
    let mut acc = local(n_top);
    for n in (1..=n_top).rev() {
        let r = neg(mat_mul(&up(n - 1), &mat_inv(&acc)?));
        if n > 1 {
            let mut next = local(n - 1);
            let rd = mat_mul(&r, &down(n));
            for (i, row) in next.iter_mut().enumerate() {
                for (j, x) in row.iter_mut().enumerate() {
                    *x += rd[i][j];
                }
            }
            acc = next;
        }
        rs[n] = r;
    }
    let mut pi: Vec<Vec<f64>> = vec![vec![1.0]];
    for n in 1..=n_top {
        let prev = &pi[n - 1];
        let v = (0..size(n))
            .map(|j| prev.iter().enumerate().map(|(i, x)| x * rs[n][i][j]).sum())
            .collect();
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
