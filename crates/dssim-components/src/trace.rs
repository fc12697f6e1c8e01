//! Request tracing: the path of a few sampled requests through the components, as spans.
//!
//! `[output] trace = N` marks the first N logical requests sent in the measured window
//! (their [`Request::trace`] number, 1..=N, survives retries). For such a request:
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

use dssim_engine::{ActorId, SimTime};

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
    /// The user.
    pub user: u32,
    /// When it was first sent.
    pub sent: SimTime,
}

#[derive(Clone, Debug)]
struct Open {
    trace: u32,
    attempt: u32,
    actor: ActorId,
    start: SimTime,
    depth: u8,
    phase: Option<(&'static str, SimTime)>,
}

/// The run's trace recorder (in [`crate::stats::Shared`]).
#[derive(Debug, Default)]
pub struct Tracer {
    /// Whether this run traces at all: the hooks' one branch.
    pub on: bool,
    limit: u32,
    open: Vec<Open>,
    /// Finished spans, in the order they ended.
    pub spans: Vec<Span>,
    /// The traced requests, in trace-number order.
    pub requests: Vec<Traced>,
}

/// The attempt key of a client's own visit, which spans all of its attempts.
const WHOLE: u32 = u32::MAX;

impl Tracer {
    /// A recorder of the first `limit` requests of the measured window (none when 0).
    pub fn new(limit: u32) -> Self {
        Tracer {
            on: limit > 0,
            limit,
            ..Tracer::default()
        }
    }

    /// Marks `r` as traced if the quota allows, and opens the client's visit. Call when a
    /// client sends a new logical request that counts (in the measured window).
    pub fn start(&mut self, r: &mut Request, now: SimTime) {
        let n = self.requests.len() as u32;
        if n >= self.limit {
            return;
        }
        r.trace = n + 1;
        self.requests.push(Traced {
            trace: r.trace,
            client: r.client,
            op: r.op,
            key: r.key,
            user: r.user,
            sent: now,
        });
        self.arrive(r.trace, WHOLE, r.client, 0, now);
    }

    fn find(&self, trace: u32, attempt: u32, actor: ActorId) -> Option<usize> {
        self.open
            .iter()
            .rposition(|o| o.trace == trace && o.attempt == attempt && o.actor == actor)
    }

    /// Opens a visit at call depth `depth` (the client's is 0, its callee's 1, ...).
    pub fn arrive(&mut self, trace: u32, attempt: u32, actor: ActorId, depth: u8, now: SimTime) {
        self.open.push(Open {
            trace,
            attempt,
            actor,
            start: now,
            depth,
            phase: None,
        });
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
        let Some(i) = self.find(trace, attempt, actor) else {
            return;
        };
        let o = &mut self.open[i];
        let level = o.depth.saturating_mul(2).saturating_add(1);
        let old = std::mem::replace(&mut o.phase, label.map(|l| (l, now)));
        if let Some((l, since)) = old {
            self.spans.push(Span {
                trace,
                actor,
                what: What::Phase(l),
                start: since,
                end: now,
                level,
            });
        }
    }

    /// Closes a visit with how it ended.
    pub fn leave(
        &mut self,
        trace: u32,
        attempt: u32,
        actor: ActorId,
        now: SimTime,
        how: &'static str,
    ) {
        self.phase(trace, attempt, actor, now, None);
        if let Some(i) = self.find(trace, attempt, actor) {
            let o = self.open.remove(i);
            self.spans.push(Span {
                trace,
                actor,
                what: What::Visit(how),
                start: o.start,
                end: now,
                level: o.depth.saturating_mul(2),
            });
        }
    }

    /// Records a finished span directly (replication).
    pub fn span(&mut self, trace: u32, actor: ActorId, what: What, start: SimTime, end: SimTime) {
        self.spans.push(Span {
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
        while let Some(o) = self.open.last().cloned() {
            self.leave(o.trace, o.attempt, o.actor, now, "unfinished");
        }
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

/// The trace number and attempt of `req` when it is traced.
#[inline]
fn traced(ctx: &Ctx<'_>, req: ReqId) -> Option<(u32, u32)> {
    match ctx.shared.reqs.get(req) {
        Some(r) if r.trace != 0 => Some((r.trace, r.attempt)),
        _ => None,
    }
}

/// A traced request arrives at this actor: its visit opens.
#[inline]
pub fn arrive(ctx: &mut Ctx<'_>, req: ReqId) {
    if !ctx.shared.trace.on {
        return;
    }
    if let Some((t, a)) = traced(ctx, req) {
        let depth = ctx.shared.reqs.get(req).map_or(1, |r| r.depth());
        let (me, now) = (ctx.me(), ctx.now());
        ctx.shared.trace.arrive(t, a, me, depth, now);
    }
}

/// This actor's visit of `req` enters phase `label` (the previous phase ends).
#[inline]
pub fn phase(ctx: &mut Ctx<'_>, req: ReqId, label: &'static str) {
    if !ctx.shared.trace.on {
        return;
    }
    if let Some((t, a)) = traced(ctx, req) {
        let (me, now) = (ctx.me(), ctx.now());
        ctx.shared.trace.phase(t, a, me, now, Some(label));
    }
}

/// This actor answers `req`: its visit closes.
#[inline]
pub fn leave(ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
    if !ctx.shared.trace.on {
        return;
    }
    if let Some((t, a)) = traced(ctx, req) {
        let (me, now) = (ctx.me(), ctx.now());
        ctx.shared.trace.leave(t, a, me, now, status_label(status));
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
            .requests
            .iter()
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
            .spans
            .iter()
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
        let mut tr = Tracer::new(1);
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
            .spans
            .iter()
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
}
