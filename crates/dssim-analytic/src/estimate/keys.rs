//! Keys on a coarse grid, for predictions that must stay instant for ten million keys.
//!
//! ```text
//!   key id:  0 1 2 ... 255 | 256..268 | 268..282 | ... | ..10_000_000
//!            one key a cell | cells grow by 5%: about 240 cells for 10M keys
//! ```
//!
//! The hottest keys (the lowest ids: key 0 is the most popular under every popularity law)
//! each have a cell, so what is known of one key (is it cacheable? which shard holds it?)
//! is used exactly; past them a cell holds keys of nearly equal popularity, and a key's
//! rate is the cell's mass over its width. Zipf masses come from generalized harmonic
//! numbers (exact up to 4096, Euler–Maclaurin past that), so no cost grows with the keys.
//!
//! A [`Load`] is the per-key read and write rate over the grid. Within a cell, keys may
//! differ in their cacheability level u ∈ [0, 1) (a key is cacheable at share s when
//! u < s, fixed per key, nested across shares: `dssim_components::cache::is_cacheable`),
//! so a cell holds pieces over u; a one-key cell has one piece, its key's own.

use std::collections::BTreeSet;

use dssim_components::cache::is_cacheable;
use dssim_components::popularity::Popularity;

/// Keys below this id have a cell each.
pub const SINGLE: u64 = 256;
/// Past [`SINGLE`], each cell is at most this much wider than its start.
const GROWTH: f64 = 1.05;
/// Generalized harmonic numbers are summed term by term up to here.
const EXACT: usize = 4096;

/// The cells `[lo, hi)` that cover the key space `0..keys`.
#[derive(Clone, Debug)]
pub struct Grid {
    /// Cells in key order.
    pub cells: Vec<(u64, u64)>,
}

impl Grid {
    /// A grid over `0..keys` with a boundary at each of `extra` too (hot-set edges, range
    /// shard edges, other clients' key counts).
    pub fn new(keys: u64, extra: impl IntoIterator<Item = u64>) -> Grid {
        let keys = keys.max(1);
        let mut b: BTreeSet<u64> = (0..=SINGLE.min(keys)).collect();
        let mut x = SINGLE;
        while x < keys {
            x = ((x as f64 * GROWTH).ceil() as u64).max(x + 1).min(keys);
            b.insert(x);
        }
        b.extend(extra.into_iter().filter(|&e| e > 0 && e < keys));
        let v: Vec<u64> = b.into_iter().collect();
        Grid {
            cells: v.windows(2).map(|w| (w[0], w[1])).collect(),
        }
    }
}

/// Σ_{k=1}^{n} k^(−a), exact up to 4096 terms, Euler–Maclaurin past that (the first
/// neglected term is below a·(a+1)(a+2)/720 · 4096^(−a−3): far below f64 precision).
#[derive(Clone, Debug)]
pub struct Harmonic {
    a: f64,
    prefix: Vec<f64>,
}

impl Harmonic {
    /// The numbers for exponent `a`.
    pub fn new(a: f64) -> Self {
        let mut prefix = Vec::with_capacity(EXACT + 1);
        let mut s = 0.0;
        prefix.push(0.0);
        for k in 1..=EXACT {
            s += (k as f64).powf(-a);
            prefix.push(s);
        }
        Harmonic { a, prefix }
    }

    /// H(n, a).
    pub fn h(&self, n: u64) -> f64 {
        if (n as usize) < self.prefix.len() {
            return self.prefix[n as usize];
        }
        let a = self.a;
        let m = EXACT as f64;
        let x = n as f64;
        let r = (x / m).ln();
        let integral = if (1.0 - a).abs() < 1e-12 {
            r
        } else {
            m.powf(1.0 - a) * ((1.0 - a) * r).exp_m1() / (1.0 - a)
        };
        self.prefix[EXACT]
            + integral
            + (x.powf(-a) - m.powf(-a)) / 2.0
            + a * (m.powf(-a - 1.0) - x.powf(-a - 1.0)) / 12.0
    }
}

/// One client's key popularity over its `keys` keys, as masses of key ranges.
#[derive(Clone, Debug)]
pub enum Mass {
    /// Every key `1/keys`.
    Uniform(u64),
    /// Key i has `(i+1)^(−a) / H(keys, a)`.
    Zipf(u64, Harmonic, f64),
    /// The first `hot` keys share `p`, the others `1 − p` (all keys `1/keys` when the hot
    /// set is every key, as the sampler draws them).
    Hotspot {
        /// Keys.
        keys: u64,
        /// Keys in the hot set.
        hot: u64,
        /// Share of requests to the hot set.
        p: f64,
    },
}

impl Mass {
    /// The masses of `popularity` over `keys` keys (as `Popularity::sampler` draws them).
    pub fn new(popularity: &Popularity, keys: u64) -> Mass {
        let keys = keys.max(1);
        match popularity {
            Popularity::Zipf(a) if a.is_finite() && *a > 0.0 => {
                let h = Harmonic::new(*a);
                let total = h.h(keys);
                Mass::Zipf(keys, h, total)
            }
            Popularity::Hotspot(f, p) => {
                let hot = ((keys as f64 * f).round() as u64).clamp(1, keys);
                Mass::Hotspot { keys, hot, p: *p }
            }
            _ => Mass::Uniform(keys),
        }
    }

    /// The key count this law draws from.
    pub fn keys(&self) -> u64 {
        match self {
            Mass::Uniform(k) | Mass::Zipf(k, ..) => *k,
            Mass::Hotspot { keys, .. } => *keys,
        }
    }

    /// Where the law changes slope (the hot set's edge), for the grid.
    pub fn edges(&self) -> Vec<u64> {
        match self {
            Mass::Hotspot { keys, hot, .. } => vec![*hot, *keys],
            m => vec![m.keys()],
        }
    }

    /// Probability that a request asks for a key in `lo..hi`.
    pub fn of(&self, lo: u64, hi: u64) -> f64 {
        let k = self.keys();
        let hi = hi.min(k);
        if lo >= hi {
            return 0.0;
        }
        match self {
            Mass::Uniform(k) => (hi - lo) as f64 / *k as f64,
            Mass::Zipf(_, h, total) => ((h.h(hi) - h.h(lo)) / total).max(0.0),
            Mass::Hotspot { keys, hot, p } => {
                if hot >= keys {
                    return (hi - lo) as f64 / *keys as f64;
                }
                let in_hot = hi.min(*hot).saturating_sub(lo);
                let in_cold = hi.saturating_sub(lo.max(*hot));
                p * in_hot as f64 / *hot as f64 + (1.0 - p) * in_cold as f64 / (keys - hot) as f64
            }
        }
    }
}

/// Keys of a cell whose cacheability level lies below `u` (above the previous piece's)
/// all ask at these per-key rates (per second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Piece {
    /// Upper end of the piece's cacheability levels.
    pub u: f64,
    /// Reads per second of each key.
    pub read: f64,
    /// Writes per second of each key.
    pub write: f64,
    /// Shortest time between two reads of a key: 0 for independent (Poisson) reads; the
    /// misses of a cache above come at least its look-back apart (see [`Group::gap`]).
    pub gap: f64,
}

/// How many keys each piece of a cell `width` keys wide stands for (a lone piece: all).
pub fn piece_sizes(pieces: &[Piece], width: f64) -> impl Iterator<Item = (f64, &Piece)> {
    let lone = pieces.len() == 1;
    let mut prev = 0.0;
    pieces.iter().map(move |p| {
        let n = if lone { width } else { width * (p.u - prev) };
        prev = p.u;
        (n, p)
    })
}

/// Per-key read and write rates over a grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    /// One list of pieces per grid cell, ordered by `u`, the last ending at 1.
    pub cells: Vec<Vec<Piece>>,
}

/// `n` keys that each see `read` reads and `write` writes per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Group {
    /// Keys (fractional for pieces of a cell).
    pub n: f64,
    /// Reads per second of each key.
    pub read: f64,
    /// Writes per second of each key.
    pub write: f64,
    /// Reads of a key come at least this long apart (seconds; 0: independent reads). The
    /// misses of an LRU cache with look-back T (or a TTL cache) are such a stream: after
    /// a miss the key is held, so the next miss is T later at the earliest, then comes
    /// with the next request. A cache below sees gap + Exp(λ) between reads.
    pub gap: f64,
}

fn whole(read: f64, write: f64) -> Vec<Piece> {
    vec![Piece {
        u: 1.0,
        read,
        write,
        gap: 0.0,
    }]
}

/// The gap of two read streams of one key merged: a stream with reads keeps its gap
/// alone; two streams with reads interleave (treated as independent reads).
fn merged_gap(a: &Piece, b: &Piece) -> f64 {
    if b.read <= 0.0 {
        a.gap
    } else if a.read <= 0.0 {
        b.gap
    } else {
        0.0
    }
}

impl Load {
    /// No traffic.
    pub fn zero(grid: &Grid) -> Load {
        Load {
            cells: vec![whole(0.0, 0.0); grid.cells.len()],
        }
    }

    /// `reads` and `writes` per second spread over the keys by `mass`.
    pub fn of_client(grid: &Grid, mass: &Mass, reads: f64, writes: f64) -> Load {
        Load {
            cells: grid
                .cells
                .iter()
                .map(|&(lo, hi)| {
                    let per = mass.of(lo, hi) / (hi - lo) as f64;
                    whole(reads * per, writes * per)
                })
                .collect(),
        }
    }

    /// Adds `other` key by key.
    pub fn add(&mut self, other: &Load) {
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            if a.len() == 1 && b.len() == 1 {
                a[0].gap = merged_gap(&a[0], &b[0]);
                a[0].read += b[0].read;
                a[0].write += b[0].write;
                continue;
            }
            let mut out = Vec::with_capacity(a.len() + b.len());
            let (mut i, mut j) = (0, 0);
            while i < a.len() && j < b.len() {
                let u = a[i].u.min(b[j].u);
                out.push(Piece {
                    u,
                    read: a[i].read + b[j].read,
                    write: a[i].write + b[j].write,
                    gap: merged_gap(&a[i], &b[j]),
                });
                if a[i].u <= u {
                    i += 1;
                }
                if b[j].u <= u {
                    j += 1;
                }
            }
            *a = out;
        }
    }

    /// Every rate times `f`.
    pub fn scaled(&self, f: f64) -> Load {
        self.map(|p| Piece {
            read: p.read * f,
            write: p.write * f,
            ..p
        })
    }

    /// Applies `f` to each piece.
    pub fn map(&self, f: impl Fn(Piece) -> Piece) -> Load {
        Load {
            cells: self
                .cells
                .iter()
                .map(|c| c.iter().map(|&p| f(p)).collect())
                .collect(),
        }
    }

    /// Splits into the keys cacheable at `share` and the others (one-key cells follow
    /// their own key exactly).
    pub fn split(&self, grid: &Grid, share: f64) -> (Load, Load) {
        if share >= 1.0 {
            return (self.clone(), Load::zero(grid));
        }
        let mut yes = Vec::with_capacity(self.cells.len());
        let mut no = Vec::with_capacity(self.cells.len());
        for (pieces, &(lo, hi)) in self.cells.iter().zip(&grid.cells) {
            if hi - lo == 1 && pieces.len() == 1 {
                let p = pieces[0];
                if is_cacheable(lo, share) {
                    yes.push(pieces.clone());
                    no.push(whole(0.0, 0.0));
                } else {
                    yes.push(whole(0.0, 0.0));
                    no.push(vec![p]);
                }
                continue;
            }
            let s = share.max(0.0);
            let mut y = Vec::new();
            let mut n = Vec::new();
            let mut prev = 0.0;
            for &p in pieces {
                let zero = Piece {
                    u: p.u,
                    read: 0.0,
                    write: 0.0,
                    gap: 0.0,
                };
                if p.u <= s {
                    y.push(p);
                    n.push(zero);
                } else if prev >= s {
                    y.push(zero);
                    n.push(p);
                } else {
                    y.push(Piece { u: s, ..p });
                    y.push(Piece { u: p.u, ..zero });
                    n.push(Piece { u: s, ..zero });
                    n.push(p);
                }
                prev = p.u;
            }
            yes.push(y);
            no.push(n);
        }
        (Load { cells: yes }, Load { cells: no })
    }

    /// The pieces as groups of keys, in cell and piece order.
    pub fn groups(&self, grid: &Grid) -> Vec<Group> {
        let mut v = Vec::new();
        for (pieces, &(lo, hi)) in self.cells.iter().zip(&grid.cells) {
            for (n, p) in piece_sizes(pieces, (hi - lo) as f64) {
                v.push(Group {
                    n,
                    read: p.read,
                    write: p.write,
                    gap: p.gap,
                });
            }
        }
        v
    }

    /// Replaces the rates piece by piece with `f(piece index in `groups` order, piece)`.
    pub fn map_indexed(&self, mut f: impl FnMut(usize, Piece) -> Piece) -> Load {
        let mut i = 0;
        Load {
            cells: self
                .cells
                .iter()
                .map(|c| {
                    c.iter()
                        .map(|&p| {
                            let q = f(i, p);
                            i += 1;
                            q
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// Reads and writes per second in all.
    pub fn totals(&self, grid: &Grid) -> (f64, f64) {
        self.groups(grid).iter().fold((0.0, 0.0), |(r, w), g| {
            (r + g.n * g.read, w + g.n * g.write)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harmonic_numbers_match_the_direct_sum() {
        for a in [0.5, 0.8, 0.99, 1.0, 1.2, 2.0] {
            let h = Harmonic::new(a);
            for n in [1u64, 10, 4096, 4097, 10_000, 1_000_000] {
                let direct: f64 = (1..=n).map(|k| (k as f64).powf(-a)).sum();
                let rel = (h.h(n) - direct).abs() / direct;
                assert!(rel < 1e-10, "a = {a}, n = {n}: {} vs {direct}", h.h(n));
            }
        }
    }

    #[test]
    fn masses_add_up_to_one_over_the_grid() {
        let keys = 10_000_000;
        let laws = [
            Popularity::Uniform,
            Popularity::Zipf(0.99),
            Popularity::Hotspot(0.01, 0.5),
        ];
        for law in laws {
            let m = Mass::new(&law, keys);
            let grid = Grid::new(keys, m.edges());
            assert!(grid.cells.len() < 600, "{} cells", grid.cells.len());
            let total: f64 = grid.cells.iter().map(|&(lo, hi)| m.of(lo, hi)).sum();
            assert!((total - 1.0).abs() < 1e-9, "{law}: {total}");
            // One key at a time, the masses are the sampler's probabilities.
            for i in [0u64, 1, 7, 255] {
                let p = law.probability(i, 1000);
                let q = Mass::new(&law, 1000).of(i, i + 1);
                assert!((p - q).abs() < 1e-12 * p.max(1e-300), "{law} key {i}");
            }
        }
    }

    #[test]
    fn loads_split_by_cacheability_and_add_back() {
        let grid = Grid::new(100_000, []);
        let m = Mass::new(&Popularity::Zipf(0.8), 100_000);
        let l = Load::of_client(&grid, &m, 900.0, 100.0);
        let (yes, no) = l.split(&grid, 0.3);
        let mut back = yes.clone();
        back.add(&no);
        let (r, w) = back.totals(&grid);
        assert!(
            (r - 900.0).abs() < 1e-6 && (w - 100.0).abs() < 1e-6,
            "{r} {w}"
        );
        // One-key cells follow their own key; wide cells split by share.
        let (ry, _) = yes.totals(&grid);
        let exact: f64 = (0..SINGLE)
            .filter(|&k| is_cacheable(k, 0.3))
            .map(|k| 900.0 * m.of(k, k + 1))
            .sum::<f64>()
            + 0.3 * 900.0 * m.of(SINGLE, 100_000);
        assert!((ry - exact).abs() < 1e-6, "{ry} vs {exact}");
        // Nested shares: splitting the cacheable part again at a larger share keeps it.
        let (again, rest) = yes.split(&grid, 0.5);
        assert!((again.totals(&grid).0 - ry).abs() < 1e-6);
        assert!(rest.totals(&grid).0.abs() < 1e-9);
    }
}
