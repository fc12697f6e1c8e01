//! Timers: a timeout that is never reached costs no event and no memory beyond the
//! requests in flight, one that is reached fires where a timer set at the send would
//! have, and pool waits leave nothing behind in the event queue.

use dssim_components::node::Node;
use dssim_components::{ModelConfig, RunOptions, World};
use dssim_engine::SimTime;

use crate::support::{model, users_to_app};

fn opts(duration: f64) -> RunOptions {
    RunOptions::new(7, SimTime::from_secs_f64(duration), SimTime::ZERO)
}

fn world(m: &ModelConfig, o: &RunOptions) -> World {
    m.build(o).unwrap_or_else(|e| panic!("build failed: {e:?}"))
}

fn deadlines_held(w: &World) -> usize {
    match w.node("users") {
        Some(Node::Client(c)) => c.deadlines_held(),
        _ => panic!("no client `users`"),
    }
}

/// 2,000 requests/s with a one-hour timeout that is never reached: the event queue and
/// the client's deadline FIFO stay at the size of the requests in flight (a handful)
/// instead of growing by 2,000 entries per simulated second (one event per attempt
/// until its deadline, as before).
#[test]
fn unreached_timeouts_hold_only_requests_in_flight() {
    let m = model(&users_to_app(
        2000,
        &[r#"timeout = "1h""#],
        r#"
workers = 4
service_time = "exp(1ms)"
"#,
    ));
    let o = opts(120.0);
    let mut w = world(&m, &o);
    let mut seen = Vec::new();
    for t in [10.0, 40.0, 100.0] {
        w.advance(SimTime::from_secs_f64(t));
        let (queued, tombstones) = w.queued_events();
        seen.push((queued, tombstones, deadlines_held(&w)));
    }
    for &(queued, tombstones, held) in &seen {
        assert!(queued < 100, "event queue grew with the timeout: {seen:?}");
        assert_eq!(tombstones, 0, "{seen:?}");
        assert!(held <= 200, "deadline FIFO grew with time: {seen:?}");
    }
    let r = w.run().expect("run");
    assert_eq!(r.metric("timeouts"), Some(0.0));
    assert!(r.metric("ok").unwrap() > 230_000.0);
}

/// Timeouts that are reached still end their requests, one per attempt, with retries:
/// a server slower than the timeout times every attempt out.
#[test]
fn reached_timeouts_fire_once_per_attempt() {
    let m = model(&users_to_app(
        50,
        &[
            r#"timeout = "100ms""#,
            r#"retries = { max = 2, backoff = "10ms" }"#,
        ],
        r#"
workers = 1000
service_time = "exp(1s)"
"#,
    ));
    let o = opts(20.0);
    let r = world(&m, &o).run().expect("run");
    let requests = r.metric("requests").unwrap();
    let timeouts = r.metric("timeouts").unwrap();
    let attempts = r.metric("attempts").unwrap();
    // P(an attempt beats 100 ms) = 1 - e^-0.1 ~ 9.5%: three attempts all time out with
    // probability 0.905^3 ~ 0.74.
    assert!(requests > 800.0, "{requests}");
    let share = timeouts / requests;
    assert!(
        (0.68..0.80).contains(&share),
        "timeouts {timeouts} of {requests}"
    );
    // Each timed-out request made three attempts; the others one to three.
    assert!(
        attempts >= 3.0 * timeouts + (requests - timeouts),
        "{attempts}"
    );
    assert!(attempts <= 3.0 * requests, "{attempts}");
}

/// An answer due at the very instant of its attempt's deadline loses: the deadline was
/// set when the attempt was sent, before the answer was scheduled, and equal times run
/// in scheduling order. (Constant service of exactly the timeout, no network latency.)
#[test]
fn a_deadline_beats_an_answer_due_at_the_same_instant() {
    let text = |timeout: &str| {
        format!(
            r#"
[[clients]]
name = "users"
target = "app"
arrival = "constant"
rate = 100
timeout = "{timeout}"
[[services]]
name = "app"
workers = 100
service_time = "50ms"
"#
        )
    };
    let o = opts(5.0);
    let tie = world(&model(&text("50ms")), &o).run().expect("run");
    let requests = tie.metric("requests").unwrap();
    assert!(requests >= 499.0, "{requests}");
    assert_eq!(tie.metric("timeouts"), Some(requests));
    let later = world(&model(&text("50000001ns")), &o).run().expect("run");
    assert_eq!(later.metric("timeouts"), Some(0.0));
    assert_eq!(later.metric("ok"), Some(requests));
}

/// Requests waiting for a database connection, with and without an acquire timeout:
/// waiters served in time cost no event and leave no cancelled timer in the queue (a pool
/// without a timeout used to park one timer at the end of time per waiter and cancel it).
#[test]
fn pool_waits_leave_no_tombstones() {
    for pool in [r#"{ size = 2 }"#, r#"{ size = 2, timeout = "5ms" }"#] {
        let m = model(&users_to_app(
            900,
            &[],
            &format!(
                r#"
workers = 16
service_time = "exp(0.2ms)"
pool = {pool}
database = "db"
[[databases]]
name = "db"
read_time = "exp(2ms)"
write_time = "exp(2ms)"
"#
            ),
        ));
        let o = opts(30.0);
        let mut w = world(&m, &o);
        for t in [5.0, 15.0, 25.0] {
            w.advance(SimTime::from_secs_f64(t));
            let (queued, tombstones) = w.queued_events();
            assert_eq!(tombstones, 0, "pool {pool} at {t}s: {queued} queued");
            assert!(queued < 200, "pool {pool} at {t}s: {queued} queued");
        }
        let r = w.run().expect("run");
        let timeouts = r.metric("pool_timeouts").unwrap_or(0.0);
        if pool.contains("timeout") {
            assert!(timeouts > 100.0, "pool {pool}: {timeouts} pool timeouts");
        } else {
            assert_eq!(timeouts, 0.0);
        }
    }
}
