//! The one message type and the one actor type of a model: closed enums, so the event
//! loop dispatches with a single `match` and stores messages inline.

use dssim_engine::Actor;

use crate::autoscaler::{Autoscaler, AutoscalerTimer};
use crate::cache::{Cache, CacheMsg};
use crate::canary::CanaryController;
use crate::circuit_breaker::{BreakerTimer, CircuitBreaker};
use crate::client::{Client, ClientTimer};
use crate::database::{DbNode, DbTimer};
use crate::faults::FaultAction;
use crate::geo::{GeoRouter, GeoTimer};
use crate::jobs::{JobQueue, QueueMsg};
use crate::load_balancer::{BalancerTimer, LoadBalancer};
use crate::request::{ReqId, Status};
use crate::sampler::Sampler;
use crate::service::{Instance, InstanceMsg};
use crate::shared::Shared;

/// Every message a component can receive: the request protocol and the messages between
/// components, shared by all kinds, then one variant per component kind holding that
/// kind's own messages and timers (a small enum defined beside its actor).
///
/// `repr(u32)`: a 4-byte tag, then each variant's fields in order (8-byte payloads at
/// offset 8). With the default layout a 1-byte field sits right after a 1-byte tag, and
/// events were copied in overlapping unaligned pieces that stalled store-to-load
/// forwarding in the run loop (a quarter of its time). The per-kind enums hold at most a
/// [`ReqId`] and a one-byte field, so they fit in the 12 bytes after the tag.
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum Msg {
    /// A request attempt arrives; its return path is in the request table.
    Request(ReqId),
    /// The answer to a request this actor sent on.
    Response(ReqId, Status),
    /// A client's own timers (arrivals, think times, attempt deadlines, retries).
    Client(ClientTimer),
    /// A service instance's own timers, and the autoscaler's drain check.
    Instance(InstanceMsg),
    /// A worker of a service instance finished the CPU part of this request: the one
    /// instance timer every request has, kept here rather than in [`InstanceMsg`] so its
    /// [`ReqId`] sits at offset 4 like the other top-level ones. The run loop then copied
    /// a message as bytes 0-4, 4-12 and 12-16 (the tag first: `Option<Event>` kept its
    /// niche there), and a `ReqId` at offset 8 was read back across two of those stores,
    /// which store-to-load forwarding cannot serve. The loop now copies the message whole
    /// ([`dssim_engine::queue::EventQueue::next_due`]); measured again on it, this with the
    /// one-word [`ReqId`] still saves 2.6 M instructions and about 3% CPU (see there).
    WorkerDone(ReqId),
    /// A load balancer's own timers (L7 parse, health-check rounds).
    Balancer(BalancerTimer),
    /// A database node's own timers (serving, failover, replication, batches).
    Db(DbTimer),
    /// A cache's own steps for a request, and its write-behind flush.
    ///
    /// Tried on Dec 7 and not kept: the lookup timer (`CacheMsg::Lookup`, one per request
    /// at a cache with a latency) as a top-level `Msg::CacheLookup`, as [`Msg::WorkerDone`]
    /// is, so that the cache dispatches it with one jump table instead of two: production
    /// 20 s 872.0 -> 870.4 M instructions, simulated mispredicts 6.69 -> 6.51 M (measured
    /// with the out-of-line answers noted at [`crate::request::reply`]), but 120 s
    /// CPU no better (medians of 8-10 interleaved rounds: 0.713 -> 0.721, 0.684 -> 0.697,
    /// 0.732 -> 0.733 s; loaded machine).
    Cache(CacheMsg),
    /// A job queue's own timers, and the autoscaler's kick.
    Queue(QueueMsg),
    /// An autoscaler's own timers.
    Autoscaler(AutoscalerTimer),
    /// The canary controller's next step.
    CanaryStep,
    /// The time-series sampler's tick.
    Tick,
    /// A database change (packed epoch, sender, sequence) reaches a replica.
    Replicate(u64),
    /// A replica tells its primary it applied a change (same packing).
    ReplAck(u64),
    /// A database node (by index in its shard) offers the writes it accepted while cut
    /// off from its primary.
    Reconcile(u64),
    /// A health probe from load balancer `from` about its backend `backend`.
    Probe {
        /// The load balancer to answer.
        from: dssim_engine::ActorId,
        /// The backend index, echoed back.
        backend: u32,
        /// The probe round, echoed back.
        round: u32,
    },
    /// A live instance's answer to a [`Msg::Probe`].
    ProbeAck {
        /// The backend index of the probe.
        backend: u32,
        /// The probe round.
        round: u32,
    },
    /// A fault, the one path for every kind: kill and recover (an instance fails what it
    /// holds and answers `Error`; a database node stops; a cache loses its entries and
    /// buffered writes), or slow down (instances only).
    Fault(FaultAction),
    /// A timed change ([`crate::changes`]): apply setting `i` of [`Shared::settings`].
    Change(u32),
    /// A circuit breaker's own timers (call timeouts).
    Breaker(BreakerTimer),
    /// A geo router's own timers (health-check rounds).
    Geo(GeoTimer),
}

// Messages are stored inline in the event heap: keep them two words at most.
const _: () = assert!(std::mem::size_of::<Msg>() <= 16);

/// The catch-all arm of a component's `handle`: a message its kind never receives is a
/// bug, caught by `debug_assert!` in debug builds (and so by the debug test runs) and
/// dropped in release builds, where the hot loop pays nothing for it.
#[inline]
pub(crate) fn unexpected(kind: &str, msg: Msg) {
    debug_assert!(
        false,
        "a {kind} received a message it never expects: {msg:?}"
    );
    let _ = (kind, msg);
}

/// The context every component handles messages with.
pub type Ctx<'a> = dssim_engine::Ctx<'a, Msg, Shared>;

/// Every kind of actor a model can hold.
///
/// Actors live once each in the simulation's actor vector (they are never moved per
/// event), so the size of the largest variant costs memory per actor, not time per event.
///
/// `repr(u8)`: a tag byte of its own. Without it the tag shared a word with a field of the
/// largest kind (a niche), and every event paid a subtract and a select to turn that word
/// into the index of the dispatch's jump table. Production 20 s 925.5 -> 923.2 M
/// instructions, M/M/1 250 s 292.8 -> 291.2 M (8 bytes more per actor).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[repr(u8)]
pub enum Node {
    /// A traffic source.
    Client(Client),
    /// One instance of a service.
    Instance(Instance),
    /// The time-series sampler.
    Sampler(Sampler),
    /// A database node (primary or replica of a shard).
    Db(DbNode),
    /// A cache node or CDN edge.
    ///
    /// Held inline (it was boxed, being larger than the other nodes): a box cost one
    /// dependent load before each cache event could read the cache, and every actor is
    /// now as large as a cache (about a kilobyte; actors are few). Production 20 s: 870.1
    /// -> 870.3 M instructions, simulated D1 misses 11.31 -> 10.88 M, mispredicts 7.29 ->
    /// 6.51 M (layout); 120 s CPU level (medians of 8 interleaved rounds, boxed against
    /// inline: 0.728 / 0.736 s on one core, 0.742 / 0.736 s on the other).
    Cache(Cache),
    /// An autoscaler of a service or job queue.
    Autoscaler(Autoscaler),
    /// A job queue and its workers.
    JobQueue(JobQueue),
    /// The controller of a service's canary rollout.
    Canary(CanaryController),
    /// A load balancer.
    LoadBalancer(LoadBalancer),
    /// A circuit breaker.
    Breaker(CircuitBreaker),
    /// A geo router's health checker.
    Geo(GeoRouter),
}

impl Actor for Node {
    type Msg = Msg;
    type Shared = Shared;

    // Tried and not kept: `#[inline(always)]` here, which puts every component's handler
    // into the run loop: M/M/1 250 s 326.2 -> 328.1 M instructions (more spills around the
    // loop than the call's prologue and epilogue saved). Also tried: the opposite, this
    // function only dispatching, to one `#[inline(never)]` function per busy kind (client,
    // instance, database, cache, load balancer) and one for the rest, so that an event whose
    // handler is a call of its own would skip the six register saves here: production
    // 20 s 925.5 -> 938.5 M instructions, M/M/1 250 s 292.8 -> 297.7 M (the `trace::arrive`
    // call kept a three-register frame here, and each kind's function has its own).
    //
    // The run's trace switch is tested before the message's kind: it is the same for every
    // event of a run, so the branch is always predicted, where the kind test (is this a
    // request?) was a coin toss on every event (a third mispredicted in callgrind's branch
    // simulation of the production model, 20 s: 7.60 -> 7.27 M mispredicts, 876.8 -> 875.0 M
    // instructions; CPU time within noise over six interleaved rounds, so a real predictor
    // learned most of it).
    #[inline]
    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        if ctx.shared.trace.on {
            arrive_traced(msg, ctx);
        }
        match self {
            Node::Client(c) => c.handle(msg, ctx),
            Node::Instance(s) => s.handle(msg, ctx),
            Node::Sampler(s) => s.handle(msg, ctx),
            Node::Db(d) => d.handle(msg, ctx),
            Node::Cache(c) => c.handle(msg, ctx),
            Node::Autoscaler(a) => a.handle(msg, ctx),
            Node::JobQueue(q) => q.handle(msg, ctx),
            Node::Canary(c) => c.handle(msg, ctx),
            Node::LoadBalancer(l) => l.handle(msg, ctx),
            Node::Breaker(b) => b.handle(msg, ctx),
            Node::Geo(g) => g.handle(msg, ctx),
        }
    }
}

/// A request arriving in a traced run opens its visit ([`crate::trace::arrive`]).
#[cold]
#[inline(never)]
fn arrive_traced(msg: Msg, ctx: &mut Ctx<'_>) {
    if let Msg::Request(req) = msg {
        crate::trace::arrive(ctx, req);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn a_message_is_two_words_and_each_kinds_enum_fits_after_the_tag() {
        assert!(size_of::<Msg>() <= 16, "Msg is {} bytes", size_of::<Msg>());
        for (kind, size) in [
            ("ClientTimer", size_of::<ClientTimer>()),
            ("InstanceMsg", size_of::<InstanceMsg>()),
            ("BalancerTimer", size_of::<BalancerTimer>()),
            ("DbTimer", size_of::<DbTimer>()),
            ("CacheMsg", size_of::<CacheMsg>()),
            ("QueueMsg", size_of::<QueueMsg>()),
            ("AutoscalerTimer", size_of::<AutoscalerTimer>()),
            ("FaultAction", size_of::<FaultAction>()),
            ("BreakerTimer", size_of::<BreakerTimer>()),
            ("GeoTimer", size_of::<GeoTimer>()),
        ] {
            assert!(
                size <= 12,
                "{kind} is {size} bytes: it no longer fits after the tag"
            );
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "never expects")]
    fn an_unexpected_message_is_caught_in_debug_builds() {
        unexpected("sampler", Msg::CanaryStep);
    }
}
