//! Cache hit ratios under independent requests (IRM), per group of equally popular keys.
//!
//! | eviction | model | occupancy of a key asked at rate r | hit of a read |
//! |---|---|---|---|
//! | `lru` | Che et al. (2002): a key stays while it is asked again within the characteristic time T | 1 − e^(−rT) | the same (PASTA) |
//! | `fifo`, `random` | Martina, Garetto, Leonardi (2014): an entry lives an exponential time of mean T from its insertion | rT / (1 + rT) | the same |
//! | `lfu` | the C keys with the highest rates are held (perfect LFU: an upper bound for the in-cache LFU the store runs) | 1 for the top C | 1 for the top C |
//!
//! T solves Σ occupancy = capacity (bisection on log T); without a capacity, or when every
//! key fits, T is infinite. On top of that, per key:
//!
//! - **TTL** (set on fill, not reset by hits; lazy expiry, so an expired entry keeps its
//!   slot and the occupancy above is unchanged): after a fill, reads hit until the entry is
//!   evicted or expires. Alone it gives the TTL-cache formula λ·TTL / (1 + λ·TTL); with LRU,
//!   a read hits when each gap since the fill was shorter than T and the fill is younger
//!   than the TTL: E[hits per fill] = Σ_{n ≤ n*} p^n with p = P(gap < T) and n* = TTL over
//!   the mean such gap (exact at both ends: TTL → ∞ gives Che, T → ∞ the TTL formula).
//! - **Writes**: `delete` invalidation and `versioned` keys end the entry at the key's next
//!   write (a Poisson rate w; a versioned key's dead entry also keeps occupying capacity
//!   until evicted, which this leaves out: an upper bound), `write_through` and
//!   `write_behind` store the written value (writes count as accesses that fill);
//!   `ttl_only` leaves it in place.
//! - **Fill delay** D (the backend read a miss waits for): reads in that gap miss too, so a
//!   fill cycle has 1 + λD misses; with `coalesce` or `lock` they share one backend read.
//!
//! hit = E[hits per fill] / (E[hits per fill] + 1 + λD).

use super::keys::Group;

/// Eviction policy, as modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Least recently used: Che's approximation.
    Lru,
    /// FIFO and random: the exponential-lifetime approximation.
    Fifo,
    /// Least frequently used: the top keys.
    Lfu,
}

/// What a write does to the cached entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    /// Nothing.
    Ignore,
    /// Removes it.
    Delete,
    /// Stores the new value (a fill).
    Fill,
}

/// One cache node.
#[derive(Clone, Debug)]
pub struct Params {
    /// Entries; unbounded when absent.
    pub capacity: Option<f64>,
    /// Eviction.
    pub policy: Policy,
    /// Time to live, seconds.
    pub ttl: Option<f64>,
    /// Effect of writes.
    pub writes: Writes,
    /// Mean time from a miss to its fill, seconds.
    pub fill: f64,
    /// Whether concurrent misses of a key share one backend read.
    pub coalesce: bool,
    /// The measured window `(from, to)` in seconds of a cache that starts empty at time 0:
    /// figures are averaged over it; steady state when absent.
    pub window: Option<(f64, f64)>,
}

/// What one group's reads see.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// Probability that a read hits.
    pub hit: f64,
    /// Backend reads per read.
    pub backend: f64,
}

/// The access rate that keeps a key in the cache, and the rate of deletions.
fn rates(g: &Group, w: Writes) -> (f64, f64) {
    match w {
        Writes::Ignore => (g.read, 0.0),
        Writes::Delete => (g.read, g.write),
        Writes::Fill => (g.read + g.write, 0.0),
    }
}

/// Probability that a key (access rate r, deletion rate d) holds a slot, for T.
fn occupancy(policy: Policy, r: f64, d: f64, t: f64) -> f64 {
    if r <= 0.0 {
        return 0.0;
    }
    let nu = r + d;
    match policy {
        Policy::Lru | Policy::Lfu => {
            if t.is_infinite() {
                r / nu
            } else {
                r / nu * -(-nu * t).exp_m1()
            }
        }
        Policy::Fifo => {
            if t.is_infinite() {
                r / nu
            } else {
                r * t / (1.0 + nu * t)
            }
        }
    }
}

/// The unfiltered request rate λ of a key whose reads arrive at rate `r` with gaps
/// `gap + Exp(λ)`: r = 1 / (gap + 1/λ).
fn unfiltered(r: f64, gap: f64) -> f64 {
    if r * gap < 1.0 {
        r / (1.0 - r * gap)
    } else {
        f64::INFINITY
    }
}

/// Whether a group's reads come as a gap stream (writes that fill the entry would
/// interleave with them; writes that delete it are taken into account).
fn gapped(g: &Group, w: Writes) -> bool {
    g.gap > 0.0 && (g.write <= 0.0 || w != Writes::Fill)
}

/// ∫_0^x e^(−a s) ds.
fn integral_exp(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        0.0
    } else if a <= 0.0 {
        x
    } else if x.is_infinite() {
        1.0 / a
    } else {
        -(-a * x).exp_m1() / a
    }
}

/// Occupancy of a key whose reads come X = gap + Exp(λ) apart and whose entry a write
/// (rate d) deletes: E[min(X, T, W)] / E[X], the share of time the entry is held (LRU).
fn occupancy_gapped(r: f64, d: f64, gap: f64, t: f64) -> f64 {
    if r <= 0.0 {
        return 0.0;
    }
    if gap.is_infinite() {
        return (r * integral_exp(d, t)).min(1.0);
    }
    let lambda = unfiltered(r, gap);
    let first = integral_exp(d, t.min(gap));
    let after = if t > gap {
        (-d * gap).exp() * integral_exp(lambda + d, t - gap)
    } else {
        0.0
    };
    ((first + after) * r).min(1.0)
}

/// Hit probability of a read of a gap stream: the next read comes within the entry's
/// look-back (and before its TTL) with no write deleting it in between; FIFO and random:
/// within its exponential lifetime.
fn hit_gapped(policy: Policy, r: f64, d: f64, gap: f64, t: f64, ttl: Option<f64>) -> f64 {
    if r <= 0.0 || gap.is_infinite() {
        return 0.0;
    }
    let lambda = unfiltered(r, gap);
    let ttl = ttl.unwrap_or(f64::INFINITY);
    // E[e^(−κX); X < x] for X = gap + Exp(λ).
    let within = |kappa: f64, x: f64| -> f64 {
        if x <= gap {
            0.0
        } else {
            (-kappa * gap).exp() * lambda * integral_exp(lambda + kappa, x - gap)
        }
    };
    match policy {
        Policy::Lru => within(d, t.min(ttl)),
        Policy::Lfu => within(d, ttl),
        Policy::Fifo => {
            let theta = if t.is_infinite() { 0.0 } else { 1.0 / t };
            within(theta + d, ttl)
        }
    }
}

/// The characteristic time: Σ n·occupancy(T) = capacity; infinite when everything fits.
pub fn characteristic_time(groups: &[Group], p: &Params) -> f64 {
    let Some(c) = p.capacity.filter(|c| c.is_finite()) else {
        return f64::INFINITY;
    };
    let total = |t: f64| -> f64 {
        groups
            .iter()
            .map(|g| {
                let (r, d) = rates(g, p.writes);
                if gapped(g, p.writes) && p.policy == Policy::Lru {
                    g.n * occupancy_gapped(r, d, g.gap, t)
                } else {
                    g.n * occupancy(p.policy, r, d, t)
                }
            })
            .sum()
    };
    if total(f64::INFINITY) <= c {
        return f64::INFINITY;
    }
    if c <= 0.0 {
        return 0.0;
    }
    // Bracket on a log scale, then bisect on the geometric mean.
    let top = groups
        .iter()
        .map(|g| rates(g, p.writes).0)
        .fold(0.0, f64::max);
    let mut lo = 1e-12 / top.max(1e-300);
    let mut hi = 1.0 / top.max(1e-300);
    for _ in 0..2000 {
        if total(hi) >= c {
            break;
        }
        lo = hi;
        hi *= 2.0;
    }
    if total(lo) >= c {
        return lo;
    }
    for _ in 0..100 {
        let mid = (lo * hi).sqrt();
        if total(mid) < c {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi / lo < 1.0 + 1e-12 {
            break;
        }
    }
    (lo * hi).sqrt()
}

/// Expected hits between a fill and the entry's end, for one key.
fn hits_per_fill(policy: Policy, r: f64, d: f64, t: f64, ttl: Option<f64>) -> f64 {
    if r <= 0.0 {
        return 0.0;
    }
    match policy {
        Policy::Lru => {
            let nu = r + d;
            // q = P(the next access does not find the entry) = d/ν + r/ν · e^(−νT).
            let q = d / nu
                + if t.is_infinite() {
                    0.0
                } else {
                    r / nu * (-nu * t).exp()
                };
            let p = 1.0 - q;
            match ttl {
                None => {
                    if q <= 0.0 {
                        f64::INFINITY
                    } else {
                        p / q
                    }
                }
                Some(ttl) => {
                    // Mean of a gap that keeps the entry: Exp(ν) cut at T.
                    let gap = if t.is_infinite() {
                        1.0 / nu
                    } else {
                        let e = (-nu * t).exp();
                        let kept = -(-nu * t).exp_m1();
                        if kept <= 0.0 {
                            t / 2.0
                        } else {
                            (1.0 / nu) * (kept - nu * t * e) / kept
                        }
                    };
                    let n_star = ttl / gap.max(1e-300);
                    if q <= 0.0 {
                        n_star
                    } else if p <= 0.0 {
                        0.0
                    } else {
                        p * -(n_star * (-q).ln_1p()).exp_m1() / q
                    }
                }
            }
        }
        Policy::Fifo | Policy::Lfu => {
            // The entry lives min(Exp(1/T + d), TTL) from its fill; reads come at rate r.
            let kappa = if t.is_infinite() { 0.0 } else { 1.0 / t } + d;
            match (ttl, kappa > 0.0) {
                (None, false) => f64::INFINITY,
                (None, true) => r / kappa,
                (Some(ttl), false) => r * ttl,
                (Some(ttl), true) => r * -(-kappa * ttl).exp_m1() / kappa,
            }
        }
    }
}

/// Points of the time average over a window.
const WINDOW_POINTS: usize = 48;

/// Hit probability and backend reads per read, for each group (in order).
///
/// With a window, the cache starts empty at time 0: at age t it holds what was asked
/// within min(t, T) (Che's argument with the look-back cut at the cache's age; LFU: a top
/// key is held once asked), so a cold cache warms up as 1 − e^(−λt) per key; the figures
/// are averaged over the window (midpoints, packed towards its start where they change
/// fastest). Past T the cache is in its steady state.
pub fn solve(groups: &[Group], p: &Params) -> Vec<Outcome> {
    let t = if p.policy == Policy::Lfu {
        f64::INFINITY
    } else {
        characteristic_time(groups, p)
    };
    let Some((from, to)) = p
        .window
        .filter(|(a, b)| b > a && a.is_finite() && b.is_finite())
    else {
        return at_age(groups, p, t, f64::INFINITY);
    };
    let from = from.max(0.0);
    let end = to.min(t);
    if end <= from {
        return at_age(groups, p, t, f64::INFINITY);
    }
    let span = to - from;
    let mut acc = vec![(0.0, 0.0); groups.len()];
    let k = WINDOW_POINTS as f64;
    for i in 0..WINDOW_POINTS {
        let x = (i as f64 + 0.5) / k;
        let age = from + (end - from) * x * x;
        let w = (end - from) * 2.0 * x / k / span;
        for (a, o) in acc.iter_mut().zip(at_age(groups, p, t, age)) {
            a.0 += w * o.hit;
            a.1 += w * o.backend;
        }
    }
    if to > end {
        let w = (to - end) / span;
        for (a, o) in acc.iter_mut().zip(at_age(groups, p, t, f64::INFINITY)) {
            a.0 += w * o.hit;
            a.1 += w * o.backend;
        }
    }
    acc.into_iter()
        .map(|(hit, backend)| Outcome {
            hit: hit.clamp(0.0, 1.0),
            backend: backend.clamp(0.0, 1.0),
        })
        .collect()
}

/// The outcomes of a cache of age `age` whose characteristic time is `t`.
fn at_age(groups: &[Group], p: &Params, t: f64, age: f64) -> Vec<Outcome> {
    let t = if p.policy == Policy::Lfu {
        t
    } else {
        t.min(age)
    };
    // LFU: the share of each group among the top-capacity keys by access rate.
    let held: Vec<f64> = if p.policy == Policy::Lfu {
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by(|&a, &b| {
            let ra = rates(&groups[a], p.writes).0;
            let rb = rates(&groups[b], p.writes).0;
            rb.total_cmp(&ra).then(a.cmp(&b))
        });
        let mut room = p.capacity.unwrap_or(f64::INFINITY);
        let mut held = vec![0.0; groups.len()];
        for i in order {
            let g = &groups[i];
            if g.n <= 0.0 || rates(g, p.writes).0 <= 0.0 {
                continue;
            }
            let take = g.n.min(room.max(0.0));
            held[i] = take / g.n;
            room -= take;
        }
        held
    } else {
        vec![1.0; groups.len()]
    };
    groups
        .iter()
        .zip(held)
        .map(|(g, held)| {
            let (r, d) = rates(g, p.writes);
            if g.read <= 0.0 || held <= 0.0 {
                return Outcome {
                    hit: 0.0,
                    backend: 1.0,
                };
            }
            // A young LFU cache holds a top key only once it was asked.
            let held = if p.policy == Policy::Lfu && age.is_finite() {
                held * -(-r * age).exp_m1()
            } else {
                held
            };
            if held <= 0.0 {
                return Outcome {
                    hit: 0.0,
                    backend: 1.0,
                };
            }
            if gapped(g, p.writes) {
                // Reads far apart: each finds the entry or not; no burst of misses to share.
                let hit = (held * hit_gapped(p.policy, r, d, g.gap, t, p.ttl)).clamp(0.0, 1.0);
                return Outcome {
                    hit,
                    backend: 1.0 - hit,
                };
            }
            let h = hits_per_fill(p.policy, r, d, t, p.ttl);
            let late = g.read * p.fill.max(0.0);
            let (hit, cycle_misses) = if h.is_infinite() {
                (1.0, 0.0)
            } else {
                (h / (h + 1.0 + late), 1.0 + late)
            };
            // Reads of a key that is not held (LFU) always miss.
            let hit = hit * held;
            let miss = 1.0 - hit;
            let backend = if p.coalesce && cycle_misses > 0.0 {
                miss / cycle_misses
            } else {
                miss
            };
            Outcome {
                hit: hit.clamp(0.0, 1.0),
                backend: backend.clamp(0.0, 1.0),
            }
        })
        .collect()
}

/// For each group, the shortest time between two of its misses (the gap of the miss
/// stream a cache below sees): an LRU entry, once filled, stays for its look-back T and
/// (with a TTL) until it expires, so misses of a key come min(T, TTL) apart at least.
/// Zero where misses can come at any time: FIFO, random and LFU evictions, writes that
/// delete the entry, bursts of misses while a fill is on its way (without coalescing).
pub fn miss_gaps(groups: &[Group], p: &Params) -> Vec<f64> {
    let t = if p.policy == Policy::Lru {
        characteristic_time(groups, p)
    } else {
        0.0
    };
    let hold = t.min(p.ttl.unwrap_or(f64::INFINITY));
    groups
        .iter()
        .map(|g| {
            let deletes = p.writes == Writes::Delete && g.write > 0.0;
            let bursts = !p.coalesce && g.read * p.fill > 0.1;
            if p.policy != Policy::Lru || deletes || bursts {
                0.0
            } else {
                hold.max(g.gap)
            }
        })
        .collect()
}

/// Hits over lookups (reads) of the groups; none without reads.
pub fn ratio(groups: &[Group], out: &[Outcome]) -> Option<f64> {
    let (mut hits, mut reads) = (0.0, 0.0);
    for (g, o) in groups.iter().zip(out) {
        hits += g.n * g.read * o.hit;
        reads += g.n * g.read;
    }
    (reads > 0.0).then(|| hits / reads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::keys::{Grid, Load, Mass};
    use dssim_components::popularity::Popularity;

    fn lru(capacity: f64) -> Params {
        Params {
            capacity: Some(capacity),
            policy: Policy::Lru,
            ttl: None,
            writes: Writes::Ignore,
            fill: 0.0,
            coalesce: false,
            window: None,
        }
    }

    /// Che's approximation key by key, with nothing grouped.
    fn che_exact(p: &[f64], c: f64) -> f64 {
        let total = |t: f64| p.iter().map(|pi| 1.0 - (-pi * t).exp()).sum::<f64>();
        let (mut lo, mut hi) = (0.0, 1.0);
        while total(hi) < c {
            hi *= 2.0;
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if total(mid) < c {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let t = 0.5 * (lo + hi);
        p.iter().map(|pi| pi * (1.0 - (-pi * t).exp())).sum()
    }

    fn zipf(n: u64, a: f64) -> Vec<f64> {
        let w: Vec<f64> = (1..=n).map(|i| (i as f64).powf(-a)).collect();
        let s: f64 = w.iter().sum();
        w.into_iter().map(|x| x / s).collect()
    }

    fn grouped(n: u64, a: f64, c: f64, params: &Params) -> f64 {
        let m = Mass::new(&Popularity::Zipf(a), n);
        let grid = Grid::new(n, m.edges());
        let g = Load::of_client(&grid, &m, 1.0, 0.0).groups(&grid);
        ratio(&g, &solve(&g, &Params { ..params.clone() })).unwrap_or_else(|| panic!("reads {c}"))
    }

    #[test]
    fn grouped_che_matches_che_key_by_key() {
        // The grid lumps keys of nearly equal popularity: Che's figure moves by < 1e-4.
        for (n, a, c) in [
            (1000u64, 0.8, 100.0),
            (10_000, 0.99, 100.0),
            (10_000, 0.99, 2000.0),
            (200_000, 0.7, 5000.0),
        ] {
            let exact = che_exact(&zipf(n, a), c);
            let got = grouped(n, a, c, &lru(c));
            assert!(
                (got - exact).abs() < 1e-4,
                "n {n} a {a} C {c}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn the_course_table_of_che_figures() {
        // experiments/cache-eviction.toml: zipf(0.99) over 10,000 keys, LRU (Che):
        // 0.377, 0.574, 0.759 at 100, 500, 2000 entries; FIFO/random 0.330, 0.526, 0.719;
        // the top C keys 0.518, 0.684, 0.829.
        for (c, lru_h, fifo_h, top) in [
            (100.0, 0.377, 0.330, 0.518),
            (500.0, 0.574, 0.526, 0.684),
            (2000.0, 0.759, 0.719, 0.829),
        ] {
            let l = grouped(10_000, 0.99, c, &lru(c));
            let f = grouped(
                10_000,
                0.99,
                c,
                &Params {
                    policy: Policy::Fifo,
                    ..lru(c)
                },
            );
            let t = grouped(
                10_000,
                0.99,
                c,
                &Params {
                    policy: Policy::Lfu,
                    ..lru(c)
                },
            );
            // The table has three decimals (its FIFO 0.719 is 0.71849 key by key).
            assert!((l - lru_h).abs() < 1e-3, "lru {c}: {l}");
            assert!((f - fifo_h).abs() < 1e-3, "fifo {c}: {f}");
            assert!((t - top).abs() < 1e-3, "lfu {c}: {t}");
        }
    }

    #[test]
    fn a_ttl_alone_gives_lambda_t_over_one_plus_lambda_t() {
        let g = [Group {
            n: 1.0,
            read: 20.0,
            write: 0.0,
            gap: 0.0,
        }];
        for policy in [Policy::Lru, Policy::Fifo] {
            let p = Params {
                capacity: None,
                policy,
                ttl: Some(0.2),
                ..lru(0.0)
            };
            let h = solve(&g, &p)[0].hit;
            assert!((h - 4.0 / 5.0).abs() < 1e-12, "{policy:?}: {h}");
        }
        // With a capacity and a TTL both, LRU sits below each alone.
        let groups = Load::of_client(
            &Grid::new(1000, []),
            &Mass::new(&Popularity::Zipf(0.8), 1000),
            2000.0,
            0.0,
        )
        .groups(&Grid::new(1000, []));
        let both = ratio(
            &groups,
            &solve(
                &groups,
                &Params {
                    ttl: Some(0.2),
                    ..lru(100.0)
                },
            ),
        )
        .unwrap();
        let cap = ratio(&groups, &solve(&groups, &lru(100.0))).unwrap();
        let ttl = ratio(
            &groups,
            &solve(
                &groups,
                &Params {
                    capacity: None,
                    ttl: Some(0.2),
                    ..lru(0.0)
                },
            ),
        )
        .unwrap();
        assert!(both < cap.min(ttl) && both > 0.0, "{both} {cap} {ttl}");
    }

    #[test]
    fn misses_of_a_cache_above_come_at_least_its_look_back_apart() {
        // Misses of a key behind a TTL cache of 300 s come 300 s + Exp(λ) apart: an LRU
        // below that looks back less than 300 s never hits them.
        let below = |gap: f64| {
            let g = [Group {
                n: 1000.0,
                read: 0.01,
                write: 0.0,
                gap,
            }];
            solve(&g, &lru(100.0))[0].hit
        };
        assert_eq!(below(300.0), 0.0);
        // With a short gap the reads come back within the look-back some of the time, less
        // often than independent reads of the same rate would.
        let (short, poisson) = (below(10.0), below(0.0));
        assert!(short > 0.0 && short < poisson, "{short} {poisson}");
        // An LRU cache's own misses: its look-back, or its TTL if shorter; none for random.
        let groups = [Group {
            n: 1000.0,
            read: 0.01,
            write: 0.0,
            gap: 0.0,
        }];
        let t = characteristic_time(&groups, &lru(100.0));
        assert_eq!(miss_gaps(&groups, &lru(100.0)), vec![t]);
        let ttl = Params {
            ttl: Some(1.0),
            ..lru(100.0)
        };
        assert_eq!(miss_gaps(&groups, &ttl), vec![1.0]);
        let random = Params {
            policy: Policy::Fifo,
            ..lru(100.0)
        };
        assert_eq!(miss_gaps(&groups, &random), vec![0.0]);
    }

    #[test]
    fn nothing_breaks_at_the_edges() {
        let g = [
            Group {
                n: 5.0,
                read: 0.0,
                write: 3.0,
                gap: 0.0,
            },
            Group {
                n: 1.0,
                read: 1e300,
                write: 0.0,
                gap: 0.0,
            },
            Group {
                n: 1e7,
                read: 1e-300,
                write: 1e-300,
                gap: 1.0,
            },
            Group {
                n: 3.0,
                read: 2.0,
                write: 0.0,
                gap: f64::INFINITY,
            },
            Group {
                n: 3.0,
                read: 2.0,
                write: 0.0,
                gap: 0.7,
            },
        ];
        for policy in [Policy::Lru, Policy::Fifo, Policy::Lfu] {
            for writes in [Writes::Ignore, Writes::Delete, Writes::Fill] {
                for capacity in [None, Some(0.0), Some(1.0), Some(1e12)] {
                    let p = Params {
                        capacity,
                        policy,
                        ttl: Some(1e-9),
                        writes,
                        fill: 0.01,
                        coalesce: true,
                        window: Some((0.0, 1.0)),
                    };
                    for o in solve(&g, &p) {
                        assert!(o.hit.is_finite() && o.backend.is_finite(), "{p:?} {o:?}");
                    }
                }
            }
        }
    }
}
