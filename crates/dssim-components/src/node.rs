//! The one message type and the one actor type of a model: closed enums, so the event
//! loop dispatches with a single `match` and stores messages inline.

use dssim_engine::Actor;

use crate::autoscaler::Autoscaler;
use crate::cache::{Cache, CacheStep};
use crate::canary::CanaryController;
use crate::client::Client;
use crate::database::DbNode;
use crate::faults::FaultAction;
use crate::jobs::JobQueue;
use crate::load_balancer::LoadBalancer;
use crate::request::{ReqId, Status};
use crate::sampler::Sampler;
use crate::service::Instance;
use crate::stats::Shared;

/// Every message a component can receive.
///
/// `repr(u32)`: a 4-byte tag, then each variant's fields in order (8-byte payloads at
/// offset 8). With the default layout a 1-byte field sits right after a 1-byte tag, and
/// events were copied in overlapping unaligned pieces that stalled store-to-load
/// forwarding in the run loop (a quarter of its time).
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum Msg {
    /// A request attempt arrives; its return path is in the request table.
    Request(ReqId),
    /// The answer to a request this actor sent on.
    Response(ReqId, Status),
    /// A client's wake-up for its oldest attempt deadline (see [`crate::client`]).
    Timeout,
    /// A service worker finished a request.
    Done(ReqId),
    /// A component's own wake-up (arrivals, think times); the payload is its to interpret.
    Wake(u64),
    /// The time-series sampler's tick.
    Tick,
    /// A database change (packed epoch, sender, sequence) reaches a replica.
    Replicate(u64),
    /// A replica tells its primary it applied a change (same packing).
    ReplAck(u64),
    /// A database node (by index in its shard) offers the writes it accepted while cut
    /// off from its primary.
    Reconcile(u64),
    /// A cache's own step for a request (see [`crate::cache`]).
    Cache(ReqId, CacheStep),
    /// A fault: the receiving node dies (a database node stops; a cache loses its entries
    /// and buffered writes).
    Kill,
    /// The end of a fault: the receiving node comes back.
    Recover,
    /// A service instance's wake-up for the deadline of its oldest connection-pool waiter.
    AcquireTimeout,
    /// A client's backoff is over: send this pending retry attempt.
    Retry(ReqId),
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
    /// A scheduled fault (kill, recover, slow down) for an instance.
    Fault(FaultAction),
    /// A timed change ([`crate::changes`]): apply setting `i` of [`Shared::settings`].
    Change(u32),
}

// Messages are stored inline in the event heap: keep them two words at most.
const _: () = assert!(std::mem::size_of::<Msg>() <= 16);

/// The context every component handles messages with.
pub type Ctx<'a> = dssim_engine::Ctx<'a, Msg, Shared>;

/// Every kind of actor a model can hold.
///
/// Actors live once each in the simulation's actor vector (they are never moved per
/// event), so the size of the largest variant costs memory per actor, not time per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Node {
    /// A traffic source.
    Client(Client),
    /// One instance of a service.
    Instance(Instance),
    /// The time-series sampler.
    Sampler(Sampler),
    /// A database node (primary or replica of a shard).
    Db(DbNode),
    /// A cache node or CDN edge (boxed: it is much larger than the other nodes).
    Cache(Box<Cache>),
    /// An autoscaler of a service or job queue.
    Autoscaler(Autoscaler),
    /// A job queue and its workers.
    JobQueue(JobQueue),
    /// The controller of a service's canary rollout.
    Canary(CanaryController),
    /// A load balancer.
    LoadBalancer(LoadBalancer),
}

impl Actor for Node {
    type Msg = Msg;
    type Shared = Shared;

    #[inline]
    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        if let Msg::Request(req) = msg {
            crate::trace::arrive(ctx, req);
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
        }
    }
}
