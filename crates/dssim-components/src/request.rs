//! Requests in flight and how they travel.
//!
//! One *attempt* of a client request lives in the [`RequestTable`] from the client's send to
//! the response the client receives. Components pass only its [`ReqId`] in messages. The
//! attempt carries a return path (a small stack of actor ids): [`call`] pushes the caller
//! and sends the request on; [`reply`] pops the caller and answers it. A message the
//! network cannot deliver becomes a `Dropped` answer for whoever waits on it, so every
//! attempt still gets exactly one answer and nothing waits forever.

use dssim_engine::{ActorId, SimTime};

use crate::node::{Ctx, Msg};

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Reads a key.
    Read,
    /// Writes a key.
    Write,
}

/// How a component answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Served.
    Ok,
    /// Failed (dead instance, refused, internal error).
    Error,
    /// Turned away by load shedding or a full queue (HTTP 503).
    Shed,
    /// Lost by the network (loss or a partition).
    Dropped,
}

/// Handle of an attempt in the [`RequestTable`]: its slot index ([`ReqId::idx`]) and the
/// slot's generation ([`ReqId::gen`], so a stale handle is recognised).
///
/// One `u64` (the index in the low half, so the bytes are those of `(idx, gen)` on a
/// little-endian machine), aligned to 4 so a message still holds it right after its 4-byte
/// tag. As two `u32` fields it was written into a message in two 4-byte stores and read
/// back by the run loop in one 8-byte load spanning both, which store-to-load forwarding
/// cannot serve: the loop stalled on every request and answer that went through the
/// queue's FIFO of now (M/M/1 250 s: 13.5% of the run loop's samples sat on that load).
/// With [`crate::node::Msg::WorkerDone`] (which keeps the instance's timer from reading it
/// at offset 8): M/M/1 250 s 295.5 -> 292.9 M instructions; 5 M customers, `taskset -c
/// 0`, six interleaved rounds: 0.574-0.589 -> 0.552-0.575 CPU s.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, packed(4))]
pub struct ReqId {
    bits: u64,
}

impl ReqId {
    /// The handle of slot `idx` in generation `gen`.
    #[inline(always)]
    pub const fn new(idx: u32, gen: u32) -> Self {
        ReqId {
            bits: ((gen as u64) << 32) | idx as u64,
        }
    }

    /// The slot index.
    #[inline(always)]
    pub const fn idx(self) -> u32 {
        self.bits as u32
    }

    /// The generation of the slot.
    #[inline(always)]
    pub const fn gen(self) -> u32 {
        (self.bits >> 32) as u32
    }
}

impl std::fmt::Debug for ReqId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReqId")
            .field("idx", &self.idx())
            .field("gen", &self.gen())
            .finish()
    }
}

/// Callers held inside an attempt; deeper return paths continue in the request table's
/// overflow stack for the attempt's slot, as deep as the model makes them (no cap: the
/// stack grows, and counts in the run's memory like the table).
const MAX_HOPS: usize = 8;

/// One attempt of a client request.
///
/// `repr(C)`, the fields every hop reads first: the table's generation, the return path
/// and the key, op, first send time and version, 64 bytes that the table keeps in one
/// cache line ([`RequestTable`]); then what the client alone reads. The 1-byte fields share
/// the generation's word, so attempts still move (into and out of the table) as aligned
/// words rather than in unaligned overlapping pieces.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct Request {
    /// The table slot's generation ([`RequestTable`]); 0 outside the table.
    gen: u32,
    /// Callers in `hops` (0..=MAX_HOPS), or MAX_HOPS + 1 when the return path continues
    /// in the table's overflow stack (see [`ReqTable::depth`]).
    depth: u8,
    /// Read or write.
    pub op: Op,
    /// Whether the client has given up on this attempt (timed out).
    pub abandoned: bool,
    /// Low-priority class (batch, prefetch): served after high-priority requests and shed
    /// first under degradation.
    pub low_priority: bool,
    /// The key it reads or writes.
    pub key: u64,
    /// When the logical request was first sent (latency starts here).
    pub first_sent: SimTime,
    /// Version of the key this request read (reads) or created (writes); 0 when none yet.
    /// The consistency oracle compares it with the newest acknowledged version.
    pub version: u64,
    hops: [ActorId; MAX_HOPS],
    /// Sequence number of the logical request within its client.
    pub seq: u64,
    /// When this attempt was sent (a retry sets it anew); the consistency oracle judges a
    /// read against the writes acknowledged before it.
    pub sent: SimTime,
    /// Backpressure: a component that sheds this attempt may ask the client to wait this
    /// long before retrying (HTTP 503 Retry-After); zero when none.
    pub retry_after: SimTime,
    /// The client actor that sent it.
    pub client: ActorId,
    /// The user it is for.
    pub user: u32,
    /// Retry number: 0 for the first attempt.
    pub attempt: u32,
    /// Size of the response in bytes (the client's `response_size`; 0 when not given), for
    /// the NIC bandwidth of the instance that answers.
    pub response_bytes: u32,
    /// Trace number (1..=N) when this request is traced (`[output] trace`), else 0; a
    /// retry keeps it (see [`crate::trace`]).
    pub trace: u32,
}

// The part every hop reads fits one cache line.
const _: () = assert!(std::mem::offset_of!(Request, hops) + 4 * MAX_HOPS == 64);

/// A slot of the [`RequestTable`]: an attempt aligned to a cache line, so its first 64
/// bytes (the part every hop reads) are one line.
#[derive(Debug)]
#[repr(C, align(64))]
struct Slot(Request);

impl Request {
    /// A new attempt with an empty return path.
    pub fn new(
        seq: u64,
        client: ActorId,
        user: u32,
        key: u64,
        op: Op,
        first_sent: SimTime,
    ) -> Self {
        Request {
            gen: 0,
            seq,
            client,
            user,
            key,
            op,
            first_sent,
            sent: first_sent,
            attempt: 0,
            abandoned: false,
            version: 0,
            response_bytes: 0,
            retry_after: SimTime::ZERO,
            low_priority: false,
            trace: 0,
            hops: [0; MAX_HOPS],
            depth: 0,
        }
    }
}

impl Request {
    /// Puts `caller` on the return path of this new attempt (still empty), as [`call`]
    /// would: send it with [`send_called`] once it is in the table.
    #[inline]
    pub fn push_caller(&mut self, caller: ActorId) {
        debug_assert_eq!(self.depth, 0, "the return path of a new attempt is empty");
        self.hops[0] = caller;
        self.depth = 1;
    }

    /// A fresh attempt of the same logical request (a retry): same user, key, op and first
    /// send time, the next attempt number, an empty return path.
    pub fn retry(&self) -> Request {
        Request {
            attempt: self.attempt + 1,
            abandoned: false,
            version: 0,
            retry_after: SimTime::ZERO,
            hops: [0; MAX_HOPS],
            depth: 0,
            ..self.clone()
        }
    }
}

/// Slab of attempts in flight; memory grows with requests in flight, not with time.
///
/// A slot's generation is odd while it holds a live attempt and even once freed (freeing
/// and reusing each add 1), so every handle has an odd generation and the one comparison
/// `slot generation == handle generation` says both "same attempt" and "live": a freed
/// slot keeps its last attempt's bytes, never read. As `(generation, Option<Request>)`
/// each look-up also tested the option's niche (one compare and branch more; about 1.9 M
/// look-ups in the production 20 s): production 20 s 872.9 -> 869.3 M instructions,
/// M/M/1 250 s 287.3 -> 285.6 M; 120 s CPU level with main's (0.725 s median of 6
/// interleaved rounds each, twice); outputs byte-identical.
///
/// The generation lives in the attempt, and slots are aligned to a cache line with the
/// part every hop reads (generation, return path, key, op, first send, version) in their
/// first 64 bytes: as `(u32, Request)` at a 112-byte stride a hop's look-up, its key and
/// its return path were spread over two or three lines. Production 20 s: simulated D1
/// misses 10.69 -> 9.15 M (reads 8.45 -> 7.13 M), 870.7 -> 873.2 M instructions; 120 s
/// CPU 0.712 -> 0.699 s and 0.715 -> 0.709 s (medians of 8 interleaved rounds on each
/// core). M/M/1 250 s 286.2 -> 284.5 M instructions, CPU level (8000 s: 0.670 -> 0.672 s,
/// 6 rounds). 16 bytes more per slot (128).
#[derive(Debug, Default)]
pub struct RequestTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    /// Per slot, the callers past the first [`MAX_HOPS`] of a deep return path (element
    /// `i` is hop `MAX_HOPS + i`); empty for most slots.
    deep: Vec<Vec<ActorId>>,
}

impl RequestTable {
    /// Stores an attempt and returns its handle.
    ///
    /// The slot is found first (a free one, or a new empty one) and the attempt written
    /// there at one place.
    #[inline]
    pub fn insert(&mut self, r: Request) -> ReqId {
        self.live += 1;
        let (idx, gen) = match self.free.pop() {
            Some(idx) => {
                let slot = &mut self.slots[idx as usize].0;
                let gen = slot.gen.wrapping_add(1);
                *slot = r;
                slot.gen = gen;
                (idx, gen)
            }
            None => {
                self.slots.push(Slot(Request { gen: 1, ..r }));
                ((self.slots.len() - 1) as u32, 1)
            }
        };
        ReqId::new(idx, gen)
    }

    /// The attempt behind `id`, if it is still live.
    #[inline]
    pub fn get(&self, id: ReqId) -> Option<&Request> {
        match self.slots.get(id.idx() as usize) {
            Some(Slot(r)) if r.gen == id.gen() => Some(r),
            _ => None,
        }
    }

    /// The attempt behind `id`, mutably, if it is still live.
    #[inline]
    pub fn get_mut(&mut self, id: ReqId) -> Option<&mut Request> {
        match self.slots.get_mut(id.idx() as usize) {
            Some(Slot(r)) if r.gen == id.gen() => Some(r),
            _ => None,
        }
    }

    /// Frees the slot of `id` and returns the attempt.
    pub fn remove(&mut self, id: ReqId) -> Option<Request> {
        let slot = &mut self.slots.get_mut(id.idx() as usize)?.0;
        if slot.gen != id.gen() {
            return None;
        }
        slot.gen = slot.gen.wrapping_add(1);
        let r = slot.clone();
        self.free.push(id.idx());
        self.live -= 1;
        Some(r)
    }

    /// Frees the slot of `id` (if live), dropping the attempt where it lies.
    ///
    /// Inlined always: with the generation inside the attempt it became a call of its own
    /// (M/M/1 250 s: 200,000 calls, 28 instructions each).
    #[inline(always)]
    pub fn free(&mut self, id: ReqId) {
        let Some(Slot(slot)) = self.slots.get_mut(id.idx() as usize) else {
            return;
        };
        if slot.gen != id.gen() {
            return;
        }
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(id.idx());
        self.live -= 1;
    }

    /// Calls `f` on every live attempt, in slot order.
    pub fn for_each_live(&self, mut f: impl FnMut(&Request)) {
        for Slot(r) in &self.slots {
            if r.gen % 2 == 1 {
                f(r);
            }
        }
    }

    /// Attempts in flight.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Bytes the table holds (its slots, grown to the most attempts ever in flight at once).
    pub fn bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>() + self.free.capacity() * 4
    }

    /// How many callers wait on attempt `req` (the length of its return path); 0 when it
    /// is gone.
    pub fn depth(&self, req: ReqId) -> usize {
        match self.get(req).map(|r| r.depth as usize) {
            Some(d) if d > MAX_HOPS => {
                MAX_HOPS + self.deep.get(req.idx() as usize).map_or(0, Vec::len)
            }
            Some(d) => d,
            None => 0,
        }
    }

    /// Pushes `me` on the return path of `req`; false when the attempt is gone.
    #[inline]
    fn push_hop(&mut self, req: ReqId, me: ActorId) -> bool {
        let Some(r) = self.get_mut(req) else {
            return false;
        };
        let d = r.depth as usize;
        if d < MAX_HOPS {
            r.hops[d] = me;
            r.depth += 1;
            return true;
        }
        // The path continues in the slot's overflow stack (fresh when it starts there).
        let fresh = d == MAX_HOPS;
        if fresh {
            r.depth += 1;
        }
        self.push_deep(req.idx() as usize, fresh, me);
        true
    }

    #[cold]
    fn push_deep(&mut self, idx: usize, fresh: bool, me: ActorId) {
        if self.deep.len() <= idx {
            self.deep.resize_with(idx + 1, Vec::new);
        }
        let v = &mut self.deep[idx];
        if fresh {
            v.clear();
        }
        v.push(me);
    }

    /// Pops the top of the return path of `req`: the caller to answer.
    ///
    /// Tried on Dec 7 and not kept: `1 <= d <= MAX_HOPS` as one unsigned compare
    /// (`d.wrapping_sub(1) < MAX_HOPS`) before the `d == 0` test: production 20 s 869.3 ->
    /// 868.7 M instructions, M/M/1 285.6 -> 285.4 M, but 120 s CPU medians 0.705 -> 0.735
    /// and 0.755 -> 0.775 s against this version (2x6 interleaved rounds, loaded machine).
    #[inline]
    fn pop_hop(&mut self, req: ReqId) -> Option<ActorId> {
        let r = self.get_mut(req)?;
        let d = r.depth as usize;
        if d == 0 {
            return None;
        }
        if d <= MAX_HOPS {
            r.depth -= 1;
            return Some(r.hops[d - 1]);
        }
        let v = self.deep.get_mut(req.idx() as usize)?;
        let top = v.pop();
        if v.is_empty() {
            if let Some(r) = self.get_mut(req) {
                r.depth = MAX_HOPS as u8;
            }
        }
        top
    }

    /// Whether `actor` is waiting on attempt `req`: it called someone with it and the
    /// answer has not come back (the top of the return path is `actor`).
    pub fn awaited_by(&self, req: ReqId, actor: ActorId) -> bool {
        let Some(r) = self.get(req) else {
            return false;
        };
        let d = r.depth as usize;
        match d {
            0 => false,
            d if d <= MAX_HOPS => r.hops[d - 1] == actor,
            _ => self.deep.get(req.idx() as usize).and_then(|v| v.last()) == Some(&actor),
        }
    }
}

/// Sends request `req` on to `to`, remembering this actor as the one to answer.
/// If the network cannot deliver it, this actor gets a `Dropped` answer at once.
#[inline]
pub fn call(ctx: &mut Ctx<'_>, to: ActorId, req: ReqId) {
    let me = ctx.me();
    if !ctx.shared.reqs.push_hop(req, me) {
        // The attempt is gone (it ended): answer rather than lose the request.
        ctx.timer(SimTime::ZERO, Msg::Response(req, Status::Error));
        return;
    }
    send_called(ctx, to, req);
}

/// The second half of [`call`]: sends request `req`, whose return path has this actor on
/// top already ([`Request::push_caller`]), on to `to`. If the network cannot deliver it,
/// this actor gets a `Dropped` answer at once.
#[inline]
pub fn send_called(ctx: &mut Ctx<'_>, to: ActorId, req: ReqId) {
    if !ctx.send(to, Msg::Request(req)) {
        ctx.shared.reqs.pop_hop(req);
        ctx.timer(SimTime::ZERO, Msg::Response(req, Status::Dropped));
    }
}

/// Sends request `req` on to `to` on the same machine after `delay` (no network).
#[inline]
pub fn call_local(ctx: &mut Ctx<'_>, to: ActorId, delay: SimTime, req: ReqId) {
    let me = ctx.me();
    if ctx.shared.reqs.push_hop(req, me) {
        ctx.send_local(to, delay, Msg::Request(req));
    } else {
        ctx.timer(SimTime::ZERO, Msg::Response(req, Status::Error));
    }
}

/// Answers request `req` to whoever sent it here. If the network cannot deliver the
/// answer, the caller receives `Dropped` instead (the connection broke).
///
/// Inlined at every call: it is the last step of every visit, and as a call it paid a
/// prologue and an epilogue per answer (M/M/1 250 s, 200k customers: 326.2 -> 322.5 M
/// instructions, 1,631 -> 1,613 a customer; with a 1 s timeout 1,807 -> 1,788; outputs
/// byte-identical).
///
/// Tried on Dec 7 and not kept: the network-failure answer here, the self-answers of
/// [`call`] and [`send_called`] and the cache's local reply moved out of line (`#[cold]`
/// calls, one inlined event-queue push per site instead of two or three): production 20 s
/// 873.2 -> 872.0 M instructions and production CPU level, but M/M/1 8000 s CPU 0.660 ->
/// 0.687 s (medians of 6 interleaved rounds; the instance's and client's code moved).
#[inline(always)]
pub fn reply(ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
    crate::trace::leave(ctx, req, status);
    let Some(to) = ctx.shared.reqs.pop_hop(req) else {
        return;
    };
    if !ctx.send(to, Msg::Response(req, status)) {
        ctx.send_local(to, SimTime::ZERO, Msg::Response(req, Status::Dropped));
    }
}

/// Answers request `req` to its caller on the same machine after `delay` (no network).
#[inline]
pub fn reply_local(ctx: &mut Ctx<'_>, req: ReqId, delay: SimTime, status: Status) {
    crate::trace::leave(ctx, req, status);
    let Some(to) = ctx.shared.reqs.pop_hop(req) else {
        return;
    };
    ctx.send_local(to, delay, Msg::Response(req, status));
}
