//! Request tracing: the path of a few sampled requests through the components, as spans.
//!
//! `[output] trace = N` marks the first N logical requests sent in the measured window
//! (their [`Request::trace`] number survives retries); with `trace_sample = "slowest"` it
//! marks every request of the window and keeps the N slowest ([`Sample`]). For a marked
//! request:
//!
//! - every component it reaches opens a *visit* when the request arrives (the one dispatch
//!   in [`crate::node`]) and closes it when it answers ([`crate::request::reply`]); the
//!   client's own visit runs from the first send to the outcome;
//! - inside a visit the component names its *phases* as they change ([`phase`]: `queue`,
//!   `cpu`, `pool wait`, `data`, ...); calls to other components nest inside them;
//! - a write carries its trace number into the replication log, so each replica's apply
//!   is a *replication* span from the commit on the primary.
//!
//! Visits are keyed by (trace, attempt, actor), so a retry that reaches the instance its
//! abandoned attempt still occupies opens a visit of its own. With tracing off every hook
//! costs one branch on [`Tracer::on`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use dssim_engine::{ActorId, SimTime};
use serde::{Deserialize, Serialize};

use crate::node::Ctx;
use crate::request::{Op, ReqId, Request, Status};

/// What a span records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// The request's time in one component, from arrival to answer, and how it ended
    /// (`ok`, `error`, `shed`, `dropped`, `timeout`, or `unfinished` at the end of the run).
    Visit(&'static str),
    /// A named stretch inside a visit (`queue`, `cpu`, ...).
    Phase(&'static str),
    /// A write's change travelling from its primary's commit to its apply on a replica
    /// (the span's actor).
    Replication,
}

/// One recorded span of a traced request.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// The traced request's number (1..=N).
    pub trace: u32,
    /// Where it happened.
    pub actor: ActorId,
    /// What it records.
    pub what: What,
    /// Start.
    pub start: SimTime,
    /// End.
    pub end: SimTime,
    /// Nesting level: a visit at call depth d is 2d, its phases 2d + 1 (so a phase and
    /// the visit of its callee that start and end together still nest the right way).
    pub level: u8,
}

/// A traced logical request: what it was, for the track's name.
#[derive(Clone, Debug, PartialEq)]
pub struct Traced {
    /// Its number (1..=N).
    pub trace: u32,
    /// The client that sent it.
    pub client: ActorId,
    /// Read or write.
    pub op: Op,
    /// The key.
    pub key: u64,
}

#[derive(Clone, Debug)]
struct Open {
    start: SimTime,
    depth: u8,
    phase: Option<(&'static str, SimTime)>,
}

/// Which requests a run traces (`[output] trace_sample`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sample {
    /// The first N requests sent in the measured window.
    #[default]
    First,
    /// The N slowest requests of the measured window (first send to outcome): every
    /// request is recorded while in flight, and only the slowest N are kept.
    Slowest,
}

impl Sample {
    /// Whether this is the default, [`Sample::First`] (files leave it out).
    pub fn is_first(&self) -> bool {
        *self == Sample::First
    }
}

/// A traced request's record: what it is and its finished spans.
#[derive(Clone, Debug)]
struct Record {
    info: Traced,
    spans: Vec<Span>,
}

/// The run's trace recorder (in [`crate::shared::Shared`]).
#[derive(Debug, Default)]
pub struct Tracer {
    /// Whether this run traces at all: the hooks' one branch.
    pub on: bool,
    limit: u32,
    sample: Sample,
    issued: u32,
    /// Open visits by (trace, attempt, actor).
    open: BTreeMap<(u32, u32, ActorId), Open>,
    /// Requests being recorded: in flight, or finished and kept.
    records: BTreeMap<u32, Record>,
    /// `Slowest`: the finished requests kept, the fastest on top (evicted first).
    kept: BinaryHeap<Reverse<(u64, Reverse<u32>)>>,
}

/// The attempt key of a client's own visit, which spans all of its attempts.
const WHOLE: u32 = u32::MAX;

impl Tracer {
    /// A recorder of `limit` requests of the measured window (none when 0), picked by
    /// `sample`.
    pub fn new(limit: u32, sample: Sample) -> Self {
        Tracer {
            on: limit > 0,
            limit,
            sample,
            ..Tracer::default()
        }
    }

    /// Marks `r` as traced if the sampling allows, and opens the client's visit. Call when
    /// a client sends a new logical request that counts (in the measured window).
    pub fn start(&mut self, r: &mut Request, now: SimTime) {
        let quota = match self.sample {
            Sample::First => self.limit,
            Sample::Slowest => WHOLE - 1,
        };
        if self.issued >= quota {
            return;
        }
        self.issued += 1;
        r.trace = self.issued;
        let info = Traced {
            trace: r.trace,
            client: r.client,
            op: r.op,
            key: r.key,
        };
        self.records.insert(
            r.trace,
            Record {
                info,
                spans: Vec::new(),
            },
        );
        self.arrive(r.trace, WHOLE, r.client, 0, now);
    }

    fn record(&mut self, span: Span) {
        if let Some(r) = self.records.get_mut(&span.trace) {
            r.spans.push(span);
        }
    }

    /// Opens a visit at call depth `depth` (the client's is 0, its callee's 1, ...).
    pub fn arrive(&mut self, trace: u32, attempt: u32, actor: ActorId, depth: u8, now: SimTime) {
        self.open.insert(
            (trace, attempt, actor),
            Open {
                start: now,
                depth,
                phase: None,
            },
        );
    }

    /// Ends the current phase of a visit (if any) and starts `label` (none: no phase).
    pub fn phase(
        &mut self,
        trace: u32,
        attempt: u32,
        actor: ActorId,
        now: SimTime,
        label: Option<&'static str>,
    ) {
        let Some(o) = self.open.get_mut(&(trace, attempt, actor)) else {
            return;
        };
        let level = o.depth.saturating_mul(2).saturating_add(1);
        let old = std::mem::replace(&mut o.phase, label.map(|l| (l, now)));
        if let Some((l, since)) = old {
            self.record(Span {
                trace,
                actor,
                what: What::Phase(l),
                start: since,
                end: now,
                level,
            });
        }
    }

    /// Closes a visit with how it ended. The client's visit ending ends the request: with
    /// `Slowest`, it is kept if it is among the slowest so far.
    pub fn leave(
        &mut self,
        trace: u32,
        attempt: u32,
        actor: ActorId,
        now: SimTime,
        how: &'static str,
    ) {
        self.phase(trace, attempt, actor, now, None);
        let Some(o) = self.open.remove(&(trace, attempt, actor)) else {
            return;
        };
        self.record(Span {
            trace,
            actor,
            what: What::Visit(how),
            start: o.start,
            end: now,
            level: o.depth.saturating_mul(2),
        });
        if attempt == WHOLE && self.sample == Sample::Slowest {
            self.kept.push(Reverse(((now - o.start).0, Reverse(trace))));
            if self.kept.len() > self.limit as usize {
                if let Some(Reverse((_, Reverse(out)))) = self.kept.pop() {
                    self.records.remove(&out);
                }
            }
        }
    }

    /// Records a finished span directly (replication).
    pub fn span(&mut self, trace: u32, actor: ActorId, what: What, start: SimTime, end: SimTime) {
        self.record(Span {
            trace,
            actor,
            what,
            start,
            end,
            level: u8::MAX,
        });
    }

    /// Closes whatever is still open at the end of the run as `unfinished`.
    pub fn close_all(&mut self, now: SimTime) {
        // Callees first (higher attempts and actors sort later), the client's visit last.
        while let Some((&(t, a, actor), _)) = self.open.iter().next() {
            self.leave(t, a, actor, now, "unfinished");
        }
    }

    /// The traced requests recorded, in number order.
    pub fn requests(&self) -> impl Iterator<Item = &Traced> {
        self.records.values().map(|r| &r.info)
    }

    /// Their spans, request by request, each request's in the order they ended.
    pub fn spans(&self) -> impl Iterator<Item = &Span> {
        self.records.values().flat_map(|r| r.spans.iter())
    }
}

/// The label of an answer.
pub fn status_label(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Error => "error",
        Status::Shed => "shed",
        Status::Dropped => "dropped",
    }
}

/// Where this actor stands with a traced request: (recorder, trace, attempt, call depth,
/// actor, now). `None` when tracing is off or `req` is not traced.
type Here<'c> = (&'c mut Tracer, u32, u32, u8, ActorId, SimTime);

///
/// Tried and not kept: `arrive`, `phase` and `leave` testing `trace.on` inline and doing
/// the rest in a `#[cold]` call (`here` is left a call at one hop per request): M/M/1
/// 250 s 292.9 -> 290.9 M instructions but 0.555 -> 0.565 CPU s (five interleaved rounds).
#[inline]
fn here<'c>(ctx: &'c mut Ctx<'_>, req: ReqId) -> Option<Here<'c>> {
    if !ctx.shared.trace.on {
        return None;
    }
    let (me, now) = (ctx.me(), ctx.now());
    match ctx.shared.reqs.get(req) {
        Some(r) if r.trace != 0 => {
            // Call depths past 255 (a very deep chain) share the last nesting level.
            let d = ctx.shared.reqs.depth(req).min(usize::from(u8::MAX)) as u8;
            let (t, a) = (r.trace, r.attempt);
            Some((&mut ctx.shared.trace, t, a, d, me, now))
        }
        _ => None,
    }
}

/// A traced request arrives at this actor: its visit opens.
#[inline]
pub fn arrive(ctx: &mut Ctx<'_>, req: ReqId) {
    if let Some((tr, t, a, depth, me, now)) = here(ctx, req) {
        tr.arrive(t, a, me, depth, now);
    }
}

/// This actor's visit of `req` enters phase `label` (the previous phase ends).
#[inline]
pub fn phase(ctx: &mut Ctx<'_>, req: ReqId, label: &'static str) {
    if let Some((tr, t, a, _, me, now)) = here(ctx, req) {
        tr.phase(t, a, me, now, Some(label));
    }
}

/// This actor answers `req`: its visit closes.
#[inline]
pub fn leave(ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
    if let Some((tr, t, a, _, me, now)) = here(ctx, req) {
        tr.leave(t, a, me, now, status_label(status));
    }
}

/// The client's own visit of a traced logical request enters phase `label`.
#[inline]
pub fn client_phase(ctx: &mut Ctx<'_>, trace: u32, label: &'static str) {
    if trace != 0 {
        let (me, now) = (ctx.me(), ctx.now());
        ctx.shared.trace.phase(trace, WHOLE, me, now, Some(label));
    }
}

/// The client's own visit of a traced logical request ends with outcome `how`.
#[inline]
pub fn client_done(ctx: &mut Ctx<'_>, trace: u32, how: &'static str) {
    if trace != 0 {
        let (me, now) = (ctx.me(), ctx.now());
        ctx.shared.trace.leave(trace, WHOLE, me, now, how);
    }
}

/// One span of a run's trace, ready to write: names resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    /// The traced request's number (its track).
    pub trace: u32,
    /// A visit: the component's name; a phase: the phase; replication: `replicate to X`.
    pub name: String,
    /// The component's kind (`client`, `service`, `database`, ...), or `replication`.
    pub cat: &'static str,
    /// The component a phase belongs to (empty for visits and replication).
    pub within: String,
    /// How a visit ended (empty for phases and replication).
    pub status: &'static str,
    /// Whether it is a replication span (off the request's own nesting).
    pub replication: bool,
    /// Nesting level (see [`Span::level`]).
    pub level: u8,
    /// Start, ns.
    pub start_ns: u64,
    /// End, ns.
    pub end_ns: u64,
}

/// A run's trace: the traced requests and their spans.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunTrace {
    /// `(trace number, description)` of each traced request, in number order.
    pub requests: Vec<(u32, String)>,
    /// The spans, ordered by (request, start, longest first): parents before children.
    pub spans: Vec<SpanRecord>,
}

impl Tracer {
    /// The finished trace of a run, with actors named by `name` (name, kind).
    pub fn report(&self, name: impl Fn(ActorId) -> (String, &'static str)) -> RunTrace {
        let requests = self
            .requests()
            .map(|t| {
                let op = match t.op {
                    Op::Read => "read",
                    Op::Write => "write",
                };
                let (client, _) = name(t.client);
                (
                    t.trace,
                    format!("#{} {op} key {} from {client}", t.trace, t.key),
                )
            })
            .collect();
        let mut spans: Vec<SpanRecord> = self
            .spans()
            .map(|s| {
                let (actor, kind) = name(s.actor);
                let (name, cat, within, status, replication) = match s.what {
                    What::Visit(how) => (actor, kind, String::new(), how, false),
                    What::Phase(p) => (p.to_string(), kind, actor, "", false),
                    What::Replication => (
                        format!("replicate to {actor}"),
                        "replication",
                        String::new(),
                        "",
                        true,
                    ),
                };
                SpanRecord {
                    trace: s.trace,
                    name,
                    cat,
                    within,
                    status,
                    replication,
                    start_ns: s.start.0,
                    end_ns: s.end.0,
                    level: s.level,
                }
            })
            .collect();
        // Parents before children: outer spans first, then the shallower of equal ones.
        spans.sort_by_key(|s| (s.trace, s.start_ns, std::cmp::Reverse(s.end_ns), s.level));
        RunTrace { requests, spans }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> SimTime {
        SimTime::from_millis(ms)
    }

    #[test]
    fn visits_nest_phases_and_close_at_the_end() {
        let mut tr = Tracer::new(1, Sample::First);
        let mut r = Request::new(1, 7, 0, 42, Op::Read, t(0));
        tr.start(&mut r, t(0));
        assert_eq!(r.trace, 1);
        let mut r2 = Request::new(2, 7, 0, 43, Op::Read, t(0));
        tr.start(&mut r2, t(0));
        assert_eq!(r2.trace, 0, "the quota is one request");
        tr.phase(1, WHOLE, 7, t(0), Some("attempt"));
        tr.arrive(1, 0, 9, 1, t(1));
        tr.phase(1, 0, 9, t(1), Some("queue"));
        tr.phase(1, 0, 9, t(3), Some("cpu"));
        tr.leave(1, 0, 9, t(5), "ok");
        tr.arrive(1, 0, 11, 1, t(6));
        tr.close_all(t(10));
        let got: Vec<_> = tr
            .spans()
            .map(|s| (s.actor, s.what, s.start.0 / 1_000_000, s.end.0 / 1_000_000))
            .collect();
        assert_eq!(
            got,
            vec![
                (9, What::Phase("queue"), 1, 3),
                (9, What::Phase("cpu"), 3, 5),
                (9, What::Visit("ok"), 1, 5),
                (11, What::Visit("unfinished"), 6, 10),
                (7, What::Phase("attempt"), 0, 10),
                (7, What::Visit("unfinished"), 0, 10),
            ]
        );
    }

    #[test]
    fn slowest_keeps_the_slowest_finished_requests() {
        let mut tr = Tracer::new(2, Sample::Slowest);
        for (i, ms) in [5u64, 1, 3, 2].into_iter().enumerate() {
            let mut r = Request::new(i as u64, 7, 0, i as u64, Op::Read, t(0));
            tr.start(&mut r, t(10 * i as u64));
            assert_eq!(r.trace, i as u32 + 1);
            tr.arrive(r.trace, 0, 9, 1, t(10 * i as u64));
            tr.leave(r.trace, 0, 9, t(10 * i as u64 + ms), "ok");
            tr.leave(r.trace, WHOLE, 7, t(10 * i as u64 + ms), "ok");
        }
        let kept: Vec<u32> = tr.requests().map(|q| q.trace).collect();
        assert_eq!(kept, vec![1, 3], "the 5 ms and 3 ms requests");
        assert_eq!(tr.spans().count(), 4, "two spans each");
    }
}
