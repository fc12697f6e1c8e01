//! The network between actors: one-way latency within and between regions, random loss,
//! and scheduled partitions between named groups of actors.
//!
//! ```text
//!   actor A (region r1) --latency(r1,r2), loss, partition?--> actor B (region r2)
//! ```
//!
//! The engine does not know what the actors are; the model builder tells the network each
//! actor's region and which actors stand on each side of a partition.

use rand::Rng as _;

use crate::dist::{uniform_f64, Dist};
use crate::queue::ActorId;
use crate::rng::Rng;
use crate::time::SimTime;

/// A partition: between `from` and `until`, no message crosses between side A and side B.
#[derive(Clone, Debug)]
pub struct Partition {
    /// Start of the partition.
    pub from: SimTime,
    /// End of the partition (exclusive).
    pub until: SimTime,
    /// Per actor: 0 on neither side, 1 on side A, 2 on side B.
    side: Vec<u8>,
}

impl Partition {
    /// A partition between the actors of `a` and those of `b`.
    pub fn new(from: SimTime, until: SimTime, a: &[ActorId], b: &[ActorId]) -> Self {
        let n = a
            .iter()
            .chain(b)
            .map(|&x| x as usize + 1)
            .max()
            .unwrap_or(0);
        let mut side = vec![0u8; n];
        for &x in a {
            side[x as usize] = 1;
        }
        for &x in b {
            side[x as usize] = 2;
        }
        Partition { from, until, side }
    }

    fn side_of(&self, x: ActorId) -> u8 {
        self.side.get(x as usize).copied().unwrap_or(0)
    }

    /// Whether this partition separates `a` and `b` at time `t`.
    pub fn separates(&self, a: ActorId, b: ActorId, t: SimTime) -> bool {
        if t < self.from || t >= self.until {
            return false;
        }
        let (sa, sb) = (self.side_of(a), self.side_of(b));
        sa != 0 && sb != 0 && sa != sb
    }
}

/// Latency, loss and partitions between actors.
#[derive(Clone, Debug, Default)]
pub struct Network {
    region_of: Vec<u16>,
    regions: usize,
    /// `latency[r1 * regions + r2]`; `None` means zero delay.
    latency: Vec<Option<Dist>>,
    loss: f64,
    partitions: Vec<Partition>,
    /// Whether a message can be delayed or lost at all: a latency, a loss rate or a
    /// partition was set. When not, [`Network::transit`] is `Some(ZERO)` at once.
    delays: bool,
    /// `Some((low, high - low))` when every message takes the one path a single region
    /// with a uniform latency, no loss and no partition gives it: then
    /// [`Network::transit`] draws it at once (see [`uniform_f64`]). Only for bounds whose
    /// draws all convert by [`SimTime::from_small_nanos_f64`] ([`Dist::small_uniform`]);
    /// others take the general path, which draws the same values.
    one_uniform: Option<(f64, f64)>,
}

impl Network {
    /// A network where every message arrives at once and none is lost.
    pub fn ideal() -> Self {
        Network::default()
    }

    /// A network with `regions` regions; `within` is the default one-way latency inside any
    /// region and between regions until [`Network::set_between`] says otherwise.
    pub fn new(regions: usize, within: Option<Dist>, loss: f64) -> Self {
        let regions = regions.max(1);
        let delays = within.is_some() || loss > 0.0;
        let mut n = Network {
            region_of: Vec::new(),
            regions,
            latency: vec![within; regions * regions],
            loss,
            partitions: Vec::new(),
            delays,
            one_uniform: None,
        };
        n.refresh();
        n
    }

    /// Recomputes [`Network::one_uniform`] after a change of latency, loss or partitions.
    fn refresh(&mut self) {
        self.one_uniform = None;
        if self.regions != 1 || self.loss > 0.0 || !self.partitions.is_empty() {
            return;
        }
        if let Some(Some(d)) = self.latency.first() {
            self.one_uniform = d.small_uniform();
        }
    }

    /// Sets the one-way latency between two regions (both directions).
    pub fn set_between(&mut self, r1: usize, r2: usize, d: Dist) {
        let n = self.regions;
        self.latency[r1 * n + r2] = Some(d.clone());
        self.latency[r2 * n + r1] = Some(d);
        self.delays = true;
        self.refresh();
    }

    /// Places `actor` in `region`.
    pub fn place(&mut self, actor: ActorId, region: usize) {
        let i = actor as usize;
        if self.region_of.len() <= i {
            self.region_of.resize(i + 1, 0);
        }
        self.region_of[i] = region.min(self.regions.saturating_sub(1)) as u16;
    }

    /// Adds a scheduled partition.
    pub fn add_partition(&mut self, p: Partition) {
        self.partitions.push(p);
        self.delays = true;
        self.refresh();
    }

    /// The scheduled partitions.
    pub fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    /// Whether `a` and `b` can talk at time `t` (no partition between them).
    pub fn reachable(&self, a: ActorId, b: ActorId, t: SimTime) -> bool {
        !self.partitions.iter().any(|p| p.separates(a, b, t))
    }

    fn region(&self, a: ActorId) -> usize {
        self.region_of.get(a as usize).copied().unwrap_or(0) as usize
    }

    /// The fate of one message from `a` to `b` sent at `t`: `Some(delay)` or `None` if lost.
    ///
    /// On a network that neither delays nor loses (the default: the M/M/1 benchmarks, the
    /// single-region models without a latency) this is one test inlined into the sender,
    /// drawing nothing, as the full path would not: 2 instructions a message of an M/M/1
    /// run instead of 26 for the call (callgrind).
    ///
    /// The one-region uniform latency of most models ([`Network::one_uniform`]) is drawn
    /// here too, inline; the general path ([`Network::transit_general`]: loss, partitions,
    /// per-region latencies) stays out of line. Production 10m, 20 s at 5,800/s (834,672
    /// messages), callgrind:
    /// - drawn at once in a leaf out-of-line function instead of through the general path
    ///   and `Dist::sample`: 141 -> 47 instructions a message, the run 1,187.1 -> 1,108.9 M
    ///   instructions, ~4% less CPU time (120 s: 0.914 -> 0.874 s user, 5 interleaved
    ///   rounds);
    /// - then inline here: 37 a message, the run 1,099.9 -> 1,091.4 M, CPU time level
    ///   (0.920 against 0.935 s median, 10 rounds on a loaded machine); the M/M/1 250 s,
    ///   which never takes this branch, rose 319.8 -> 320.4 M (+3 instructions a customer
    ///   of register spills in `Client::send_new`).
    ///
    /// Outputs byte-identical.
    #[inline(always)]
    pub fn transit(&self, a: ActorId, b: ActorId, t: SimTime, rng: &mut Rng) -> Option<SimTime> {
        if !self.delays {
            return Some(SimTime::ZERO);
        }
        if let Some((low, scale)) = self.one_uniform {
            return Some(SimTime::from_small_nanos_f64(uniform_f64(low, scale, rng)));
        }
        self.transit_general(a, b, t, rng)
    }

    /// Loss, partitions and per-region latencies.
    #[inline(never)]
    fn transit_general(
        &self,
        a: ActorId,
        b: ActorId,
        t: SimTime,
        rng: &mut Rng,
    ) -> Option<SimTime> {
        if !self.partitions.is_empty() && !self.reachable(a, b, t) {
            return None;
        }
        if self.loss > 0.0 && rng.random::<f64>() < self.loss {
            return None;
        }
        if self.latency.is_empty() {
            return Some(SimTime::ZERO);
        }
        let i = self.region(a) * self.regions + self.region(b);
        Some(match &self.latency[i] {
            Some(d) => d.sample(rng),
            None => SimTime::ZERO,
        })
    }

    /// Mean one-way latency from `a` to `b` in ns (for back-of-envelope estimates).
    pub fn mean_latency(&self, a: ActorId, b: ActorId) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        let i = self.region(a) * self.regions + self.region(b);
        self.latency[i].as_ref().map_or(0.0, Dist::mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn partitions_cut_both_ways_only_while_active() {
        let mut n = Network::new(1, None, 0.0);
        n.add_partition(Partition::new(SimTime(10), SimTime(20), &[0], &[1, 2]));
        let mut r = stream(1, "n");
        assert!(n.transit(0, 1, SimTime(5), &mut r).is_some());
        assert!(n.transit(0, 1, SimTime(10), &mut r).is_none());
        assert!(n.transit(2, 0, SimTime(19), &mut r).is_none());
        assert!(n.transit(1, 2, SimTime(15), &mut r).is_some());
        assert!(n.transit(0, 3, SimTime(15), &mut r).is_some());
        assert!(n.transit(0, 1, SimTime(20), &mut r).is_some());
    }

    /// The instant-network shortcut applies only while nothing can delay or lose a
    /// message: it draws nothing, and a latency, loss or partition set later is honoured.
    #[test]
    fn only_an_instant_network_takes_the_shortcut() {
        use rand::Rng as _;
        let mut r = stream(1, "n");
        let mut twin = stream(1, "n");
        let mut n = Network::new(2, None, 0.0);
        assert_eq!(n.transit(0, 1, SimTime(0), &mut r), Some(SimTime::ZERO));
        assert_eq!(
            Network::ideal().transit(0, 1, SimTime(0), &mut r),
            Some(SimTime::ZERO)
        );
        assert_eq!(r.random::<u64>(), twin.random::<u64>(), "the shortcut drew");
        n.set_between(0, 1, Dist::Const(7.0));
        n.place(1, 1);
        assert_eq!(n.transit(0, 1, SimTime(0), &mut r), Some(SimTime(7)));
        let mut p = Network::new(1, None, 0.0);
        p.add_partition(Partition::new(SimTime(0), SimTime(9), &[0], &[1]));
        assert_eq!(p.transit(0, 1, SimTime(1), &mut r), None);
        assert!(Network::new(1, None, 1.0)
            .transit(0, 1, SimTime(1), &mut r)
            .is_none());
    }

    /// The one-region uniform shortcut draws what the general path draws, message for
    /// message, and is off as soon as loss, a partition or a second region's latency counts.
    #[test]
    fn the_one_uniform_shortcut_draws_as_the_general_path() {
        let d = Dist::parse("uniform(0.2ms, 0.8ms)").unwrap();
        let n = Network::new(1, Some(d.clone()), 0.0);
        assert!(n.one_uniform.is_some());
        let (mut r, mut twin, mut third) = (stream(5, "n"), stream(5, "n"), stream(5, "n"));
        for i in 0..10_000 {
            let got = n.transit(i % 7, i % 3, SimTime(u64::from(i)), &mut r);
            assert_eq!(got, n.transit_general(i % 7, i % 3, SimTime(0), &mut twin));
            assert_eq!(got, Some(d.sample(&mut third)));
        }
        assert!(Network::new(1, Some(d.clone()), 0.1).one_uniform.is_none());
        assert!(Network::new(2, Some(d.clone()), 0.0).one_uniform.is_none());
        assert!(Network::new(1, Some(Dist::Const(5.0)), 0.0)
            .one_uniform
            .is_none());
        assert!(Network::new(1, Some(Dist::Uniform(5.0, 5.0)), 0.0)
            .one_uniform
            .is_none());
        assert!(Network::new(1, Some(Dist::Uniform(-5.0, 5.0)), 0.0)
            .one_uniform
            .is_none());
        assert!(Network::new(1, Some(Dist::Uniform(1.0, 1e16)), 0.0)
            .one_uniform
            .is_none());
        let mut p = Network::new(1, Some(d.clone()), 0.0);
        p.add_partition(Partition::new(SimTime(0), SimTime(9), &[0], &[1]));
        assert!(p.one_uniform.is_none());
        let mut s = Network::new(1, Some(Dist::Const(5.0)), 0.0);
        s.set_between(0, 0, d);
        assert!(s.one_uniform.is_some());
    }

    #[test]
    fn regions_have_their_own_latency() {
        let mut n = Network::new(2, Some(Dist::Const(100.0)), 0.0);
        n.set_between(0, 1, Dist::Const(40_000.0));
        n.place(0, 0);
        n.place(1, 1);
        n.place(2, 0);
        let mut r = stream(1, "n");
        assert_eq!(n.transit(0, 1, SimTime(0), &mut r), Some(SimTime(40_000)));
        assert_eq!(n.transit(0, 2, SimTime(0), &mut r), Some(SimTime(100)));
    }
}
