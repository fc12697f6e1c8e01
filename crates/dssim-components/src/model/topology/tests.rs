//! The topology resolved from small models: every edge, breakers and calls, loops cut.

use super::*;

fn model(toml_text: &str) -> ModelConfig {
    toml::from_str(toml_text).unwrap()
}

#[test]
fn a_client_behind_a_geo_router_targets_its_nearest_entry_and_fails_over_to_the_rest() {
    let m = model(
        r#"
        [[clients]]
        name = "eu"
        target = "dns"
        rate = 10.0
        region = "eu"
        [[geo_routers]]
        name = "dns"
        entries = ["lb-us", "app-eu"]
        [[load_balancers]]
        name = "lb-us"
        backends = "app-us"
        region = "us"
        [[services]]
        name = "app-us"
        service_time = "1ms"
        region = "us"
        [[services]]
        name = "app-eu"
        service_time = "1ms"
        region = "eu"
        [network]
        latency = "1ms"
        [network.regions]
        "us:eu" = "40ms"
        "#,
    );
    let t = Topology::new(&m);
    let (app_eu, lb_us) = (
        Component::Service(ServiceIx(1)),
        Component::LoadBalancer(LbIx(0)),
    );
    assert_eq!(t.geo_router("dns"), Some(0));
    assert_eq!(
        t.lookup("dns"),
        None,
        "a geo router is not on the request path"
    );
    assert_eq!(t.target(ClientIx(0)), Some(app_eu));
    assert_eq!(
        t.geo_route(ClientIx(0)),
        Some((0, &[(1, app_eu), (0, lb_us)][..]))
    );
    let client = Component::Client(ClientIx(0));
    let targets: Vec<Component> = t
        .edges()
        .into_iter()
        .filter(|e| e.0 == client)
        .map(|e| e.1)
        .collect();
    assert_eq!(targets, vec![app_eu, lb_us]);
}

#[test]
fn resolves_every_edge_of_a_three_tier_model() {
    let m = model(
        r#"
        [[clients]]
        name = "users"
        target = "edge"
        rate = 10.0
        [[caches]]
        name = "edge"
        tier = "cdn"
        origin = "lb"
        [[load_balancers]]
        name = "lb"
        backends = "app"
        [[services]]
        name = "app"
        service_time = "1ms"
        cache = "redis"
        database = "db"
        [[caches]]
        name = "redis"
        [[databases]]
        name = "db"
        read_time = "1ms"
        write_time = "2ms"
        [[queues]]
        name = "mail"
        producer = "app"
        job_time = "1ms"
        "#,
    );
    let t = Topology::new(&m);
    let app = ServiceIx(0);
    assert_eq!(t.lookup("lb"), Some(Component::LoadBalancer(LbIx(0))));
    assert_eq!(t.target(ClientIx(0)), Some(Component::Cache(CacheIx(0))));
    assert_eq!(t.service_behind(Component::Client(ClientIx(0))), Some(app));
    assert_eq!(t.cache_of(app), Some(CacheIx(1)));
    assert_eq!(t.users(CacheIx(1)), &[app]);
    assert_eq!(t.queues_of(app), &[QueueIx(0)]);
    assert_eq!(t.producer(QueueIx(0)), Some(app));
    // The shared app cache reads and writes the database of its user.
    assert_eq!(
        t.cache_backend(CacheIx(1), app),
        Some(Component::Database(DbIx(0)))
    );
    assert_eq!(t.name(Component::Database(DbIx(0))), "db");
    assert_eq!(t.instance_name(app, 3), "app.3");
    assert_eq!(t.local_cache_name(CacheIx(1), app, 0), "redis@app.0");
    // Each after everything that sends to it.
    let pos = |c| t.order().iter().position(|&x| x == c).unwrap();
    assert!(pos(Component::Cache(CacheIx(0))) < pos(Component::LoadBalancer(LbIx(0))));
    assert!(pos(Component::Service(app)) < pos(Component::Cache(CacheIx(1))));
    assert!(pos(Component::Cache(CacheIx(1))) < pos(Component::Database(DbIx(0))));
    assert_eq!(t.edges().len(), 6);
}

#[test]
fn a_ring_of_origins_is_cut_and_every_walk_ends() {
    let m = model(
        r#"
        [[clients]]
        name = "users"
        target = "a"
        rate = 10.0
        [[caches]]
        name = "a"
        tier = "cdn"
        origin = "b"
        [[caches]]
        name = "b"
        tier = "cdn"
        origin = "a"
        [[caches]]
        name = "c"
        tier = "cdn"
        origin = "a"
        "#,
    );
    let t = Topology::new(&m);
    let (a, b, c) = (CacheIx(0), CacheIx(1), CacheIx(2));
    assert!(t.on_ring(Component::Cache(a)) && t.on_ring(Component::Cache(b)));
    assert!(!t.on_ring(Component::Cache(c)));
    assert_eq!(t.walk(Component::Client(ClientIx(0))).count(), 2);
    assert_eq!(t.service_behind(Component::Cache(c)), None);
    assert_eq!(t.cache_order().len(), 3);
    // With the ring cut, every cache has its place in the order.
    assert_eq!(
        t.order(),
        &[
            Component::Cache(b),
            Component::Cache(c),
            Component::Cache(a)
        ]
    );
}

#[test]
fn resolves_breakers_and_calls_and_finds_a_loop_of_calls() {
    // front calls back through a breaker; back calls api (a balancer over front).
    let m = model(
        r#"
        [[clients]]
        name = "users"
        target = "cb"
        rate = 10.0
        [[services]]
        name = "front"
        service_time = "1ms"
        calls = [{ to = "cb" }, { to = "nowhere" }]
        [[services]]
        name = "back"
        service_time = "1ms"
        calls = [{ to = "api" }]
        [[services]]
        name = "leaf"
        service_time = "1ms"
        [[load_balancers]]
        name = "api"
        backends = "front"
        [[circuit_breakers]]
        name = "cb"
        target = "back"
        "#,
    );
    let t = Topology::new(&m);
    let cb = Component::Breaker(BreakerIx(0));
    let (front, back) = (ServiceIx(0), ServiceIx(1));
    assert_eq!(t.lookup("cb"), Some(cb));
    assert_eq!(t.name(cb), "cb");
    assert_eq!(t.protects(BreakerIx(0)), Some(Component::Service(back)));
    assert_eq!(t.calls_of(front), &[Some(cb), None]);
    assert_eq!(t.service_behind(cb), Some(back));
    assert_eq!(t.walk(Component::Client(ClientIx(0))).count(), 3);
    let edges = t.edges();
    assert!(edges.contains(&(Component::Service(front), cb, Edge::Call)));
    assert!(edges.contains(&(cb, Component::Service(back), Edge::Protects)));
    // The loop front -> cb -> back -> api -> front: out of the order, and found.
    assert_eq!(t.order(), &[Component::Service(ServiceIx(2))]);
    let lp = t.loop_through(Component::Service(front)).unwrap();
    assert_eq!(
        lp,
        vec![
            Component::Service(front),
            cb,
            Component::Service(back),
            Component::LoadBalancer(LbIx(0)),
            Component::Service(front)
        ]
    );
    assert_eq!(t.loop_through(Component::Service(ServiceIx(2))), None);
}

#[test]
fn a_loop_through_a_service_is_left_out_of_the_order() {
    // The app cache's misses go back to the service that reads through it.
    let m = model(
        r#"
        [[clients]]
        name = "users"
        target = "app"
        rate = 10.0
        [[services]]
        name = "app"
        service_time = "1ms"
        cache = "redis"
        [[caches]]
        name = "redis"
        origin = "app"
        "#,
    );
    let t = Topology::new(&m);
    assert_eq!(
        t.downstream(Component::Cache(CacheIx(0))),
        vec![Component::Service(ServiceIx(0))]
    );
    assert!(t.order().is_empty());
}

#[test]
fn build_order_puts_an_origin_edge_first() {
    let m = model(
        r#"
        [[clients]]
        name = "users"
        target = "a"
        rate = 10.0
        [[caches]]
        name = "a"
        tier = "cdn"
        origin = "c"
        [[caches]]
        name = "b"
        tier = "cdn"
        [[caches]]
        name = "c"
        tier = "cdn"
        "#,
    );
    let t = Topology::new(&m);
    assert_eq!(t.cache_order(), &[CacheIx(1), CacheIx(2), CacheIx(0)]);
}
