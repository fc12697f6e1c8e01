//! A demo: one run of an experiment, stepped against the clock, with the teacher's actions
//! recorded as timed changes of the model.
//!
//! Every action becomes part of the model (a `[[faults]]` entry, a partition, a rate
//! step, a `[[changes]]` entry for workers, instances, TTL or the balancing algorithm) at the simulated time it was taken, and the world is rebuilt from that model and
//! run again up to the current time. So the live world is, at every moment, exactly the
//! world `dssim run` builds from [`Demo::export`]: the same actions at the same simulated
//! times give the same results, byte for byte. Rebuilding costs a re-run from time zero
//! (a fraction of a second for most classroom models).

use std::path::Path;

use dssim_components::changes::{ChangeConfig, Settings};
use dssim_components::client::{Arrival, Step};
use dssim_components::faults::FaultConfig;
use dssim_components::model::Graph;
use dssim_components::model::PartitionConfig;
use dssim_components::units::Dur;
use dssim_components::{ModelConfig, RunOptions, World};
use dssim_engine::SimTime;
use dssim_lab::experiment::OutputConfig;
use dssim_lab::{Experiment, LabError, RunSpec};
use serde::{Deserialize, Serialize};

/// What a teacher did, at the simulated time it was done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Kill an instance, a service, a database node or a cache.
    Kill {
        /// Its name (`app.2`, `db.primary`).
        target: String,
    },
    /// Bring a killed component back (empty).
    Recover {
        /// Its name.
        target: String,
    },
    /// Cut the network between two sets of components.
    Cut {
        /// One side: component or instance names.
        a: Vec<String>,
        /// The other side.
        b: Vec<String>,
    },
    /// Heal every open cut.
    Heal,
    /// Set a client's Poisson arrival rate from now on.
    Rate {
        /// The client.
        client: String,
        /// Requests per second.
        rate: f64,
    },
    /// Change settings of a component from now on: a service's `workers` or `instances`,
    /// a cache's `ttl`, a load balancer's `algorithm` (a `[[changes]]` entry).
    Set {
        /// The service, cache or load balancer.
        target: String,
        /// The new settings.
        set: Settings,
    },
}

/// An action and when it takes effect.
#[derive(Clone, Debug)]
pub struct Timed {
    /// Simulated time.
    pub at: SimTime,
    /// What.
    pub action: Action,
}

/// A cut not yet healed lasts until this long after the end (the drain included).
fn open_end(duration: SimTime) -> SimTime {
    duration + duration.max(SimTime::from_secs(1)) + SimTime::from_secs(1)
}

/// One live run.
pub struct Demo {
    /// The experiment it came from.
    pub exp: Experiment,
    /// The resolved run (its model before any action).
    pub spec: RunSpec,
    /// Label of the sweep point (`databases.db.consistency=cp`), empty without a sweep.
    pub label: String,
    actions: Vec<Timed>,
    world: Option<World>,
    /// The finished run's runs.csv (header and row), once the end is reached.
    result: Option<String>,
    /// Bumped at every rebuild: the time series so far may change.
    pub generation: u64,
    /// The time series of the finished run.
    series: Vec<dssim_components::stats::SeriesRow>,
    graph: Graph,
}

/// The row width of the live charts when the experiment asks for no time series.
pub fn default_interval(duration: SimTime) -> SimTime {
    if duration >= SimTime::from_secs(30) {
        SimTime::from_secs(1)
    } else {
        SimTime::from_millis(100)
    }
}

impl Demo {
    /// Loads sweep point `point` of the experiment, replication 0.
    pub fn new(exp: &Experiment, point: usize) -> Result<Demo, LabError> {
        let mut exp = exp.clone();
        if exp.output.timeseries.is_none_or(|d| d.0 == SimTime::ZERO) {
            exp.output.timeseries = Some(Dur(default_interval(exp.duration)));
        }
        let point = point.min(exp.points().saturating_sub(1));
        let spec = exp.spec(point * exp.replications as usize)?;
        let label = exp
            .sweep
            .iter()
            .zip(&spec.swept)
            .map(|((p, _), v)| format!("{p}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let world = build(&spec.model, &spec.opts)?;
        let graph = world.graph();
        Ok(Demo {
            exp,
            spec,
            label,
            actions: Vec::new(),
            world: Some(world),
            result: None,
            generation: 0,
            series: Vec::new(),
            graph,
        })
    }

    /// The wiring as built.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The world, until the run has ended.
    pub fn world(&self) -> Option<&World> {
        self.world.as_ref()
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.world
            .as_ref()
            .map_or(self.spec.opts.duration, World::now)
    }

    /// Whether the run has ended.
    pub fn done(&self) -> bool {
        self.result.is_some()
    }

    /// runs.csv of the finished run, as `dssim run` writes it for the exported file.
    pub fn result(&self) -> Option<&str> {
        self.result.as_deref()
    }

    /// The time-series rows closed so far.
    pub fn series(&self) -> &[dssim_components::stats::SeriesRow] {
        self.world.as_ref().map_or(&self.series, World::series)
    }

    /// The actions so far.
    pub fn actions(&self) -> &[Timed] {
        &self.actions
    }

    /// Advances to `t`; at the end of arrivals the run drains and ends as `dssim run` ends it.
    pub fn step_to(&mut self, t: SimTime) -> Result<(), String> {
        let Some(w) = self.world.as_mut() else {
            return Ok(());
        };
        w.step_to(t);
        if w.now() >= self.spec.opts.duration {
            let world = self.world.take().expect("world present");
            self.series = world.series().to_vec();
            let report = world.run().map_err(|e| e.to_string())?;
            let mut text = dssim_lab::output::runs_header(&[]).join(",");
            text.push('\n');
            // The exported file has one point and one replication: run 0.
            let spec = RunSpec {
                run: 0,
                point: 0,
                replication: 0,
                swept: Vec::new(),
                ..self.spec.clone()
            };
            text.push_str(&dssim_lab::output::runs_line(&spec, &report));
            text.push('\n');
            self.result = Some(text);
        }
        Ok(())
    }

    /// The model with every action so far written in.
    pub fn model(&self) -> ModelConfig {
        let mut m = self.spec.model.clone();
        let end = open_end(self.spec.opts.duration);
        for t in &self.actions {
            let at = Dur(t.at);
            match &t.action {
                Action::Kill { target } => m.faults.push(FaultConfig {
                    kill: Some(target.clone()),
                    slow: None,
                    at,
                    recover: None,
                    factor: None,
                    until: None,
                }),
                Action::Recover { target } => {
                    if let Some(f) =
                        m.faults.iter_mut().rev().find(|f| {
                            f.kill.as_deref() == Some(target.as_str()) && f.recover.is_none()
                        })
                    {
                        f.recover = Some(at);
                    }
                }
                Action::Cut { a, b } => m.network.partitions.push(PartitionConfig {
                    sides: vec![a.clone(), b.clone()],
                    from: at,
                    until: Dur(end),
                }),
                Action::Heal => {
                    for p in &mut m.network.partitions {
                        if p.until.0 == end && p.from.0 < t.at {
                            p.until = at;
                        }
                    }
                }
                Action::Rate { client, rate } => {
                    if let Some(c) = m.clients.iter_mut().find(|c| &c.name == client) {
                        if c.arrival == Arrival::Poisson {
                            c.arrival = Arrival::Steps;
                        }
                        let steps = c.steps.get_or_insert_with(Vec::new);
                        steps.retain(|s| s.at.0 < t.at);
                        steps.push(Step { at, rate: *rate });
                    }
                }
                Action::Set { target, set } => m.changes.push(ChangeConfig {
                    at,
                    target: target.clone(),
                    set: set.clone(),
                }),
            }
        }
        m
    }

    /// Whether `action` makes sense now; the reason when it does not.
    fn check(&self, action: &Action, at: SimTime) -> Result<(), String> {
        let m = self.model();
        let known = m.addressable();
        let name_ok = |n: &str| {
            if known.iter().any(|k| k == n) {
                Ok(())
            } else {
                Err(format!("no component is named {n:?}"))
            }
        };
        let dead = |n: &str| {
            m.faults.iter().any(|f| {
                f.kill.as_deref() == Some(n) && f.at.0 <= at && f.recover.is_none_or(|r| r.0 > at)
            })
        };
        match action {
            Action::Kill { target } => {
                name_ok(target)?;
                if dead(target) {
                    return Err(format!("{target} is already down"));
                }
            }
            Action::Recover { target } => {
                name_ok(target)?;
                let ours = m.faults.iter().any(|f| {
                    f.kill.as_deref() == Some(target.as_str()) && f.recover.is_none() && f.at.0 < at
                });
                if !ours {
                    return Err(format!(
                        "{target} was not killed from this page (or is back already)"
                    ));
                }
            }
            Action::Cut { a, b } => {
                if a.is_empty() || b.is_empty() {
                    return Err("a cut needs two non-empty sides".into());
                }
                for n in a.iter().chain(b) {
                    name_ok(n)?;
                }
            }
            Action::Heal => {
                let end = open_end(self.spec.opts.duration);
                if !m.network.partitions.iter().any(|p| p.until.0 == end) {
                    return Err("no cut is open".into());
                }
            }
            Action::Rate { client, rate } => {
                let Some(c) = m.clients.iter().find(|c| &c.name == client) else {
                    return Err(format!("no client is named {client:?}"));
                };
                if !matches!(c.arrival, Arrival::Poisson | Arrival::Steps) {
                    return Err(format!(
                        "{client} has arrival = {:?}; the page changes the rate of poisson and steps clients only",
                        c.arrival
                    ));
                }
                if !(rate.is_finite() && *rate >= 0.0 && *rate <= dssim_components::model::MAX_RATE)
                {
                    return Err(format!("rate must be between 0 and 1e9, found {rate}"));
                }
            }
            Action::Set { target, set } => {
                let mut errs = Vec::new();
                let valid = m.changeable();
                ChangeConfig {
                    at: Dur(at),
                    target: target.clone(),
                    set: set.clone(),
                }
                .validate("set", |n| m.change_target(n), &valid, &mut errs);
                if let Some(e) = errs.first() {
                    return Err(format!("{target}: {}", e.message));
                }
            }
        }
        Ok(())
    }

    /// Applies `action` at the current simulated time rounded up to a whole millisecond (so
    /// the exported file reads well): rebuilds the world with it and runs the new world up
    /// to now (an action at exactly now is applied in that re-run, as `dssim run` would).
    /// Returns the time it takes effect.
    pub fn act(&mut self, action: Action) -> Result<SimTime, String> {
        if self.done() {
            return Err("the run has ended".into());
        }
        let now = self.now();
        let ms = SimTime::from_millis(1).0;
        let at = SimTime(now.0.div_ceil(ms) * ms);
        if at >= self.spec.opts.duration {
            return Err("too close to the end of the run".into());
        }
        self.check(&action, at)?;
        self.actions.push(Timed { at, action });
        let model = self.model();
        let rebuilt = build(&model, &self.spec.opts).map(|mut w| {
            w.step_to(now);
            w
        });
        match rebuilt {
            Ok(w) => {
                // A change of the instance count may build more instances.
                self.graph = w.graph();
                self.world = Some(w);
                self.generation += 1;
                Ok(at)
            }
            Err(e) => {
                self.actions.pop();
                Err(e.to_string())
            }
        }
    }

    /// The demo as an experiment file: the resolved model inline, the actions written in
    /// as timed faults, partitions, rate steps and changes, one replication with the same seed and
    /// the same time-series width. `dssim run` on it gives this demo's numbers.
    pub fn export(&self) -> Result<String, String> {
        #[derive(Serialize)]
        struct File<'a> {
            name: String,
            description: String,
            duration: Dur,
            warmup: Dur,
            seed: u64,
            replications: u32,
            output: &'a OutputConfig,
            model: ModelConfig,
        }
        let name = format!("{}-demo", self.exp.name);
        let mut description = format!("dssim serve demo of {}", self.exp.name);
        if !self.label.is_empty() {
            description.push_str(&format!(" ({})", self.label));
        }
        let mut model = self.model();
        // Arrival traces go inline: the exported file may live anywhere.
        for c in &mut model.clients {
            if c.arrival == Arrival::Trace {
                c.file = None;
            }
        }
        let file = File {
            name,
            description,
            duration: Dur(self.spec.opts.duration),
            warmup: Dur(self.spec.opts.warmup),
            seed: self.exp.seed,
            replications: 1,
            output: &self.exp.output,
            model,
        };
        let body = toml::to_string(&file).map_err(|e| e.to_string())?;
        let mut head = String::from(
            "# Exported by `dssim serve`: the demo's model with its actions as timed changes.\n",
        );
        for t in &self.actions {
            head.push_str(&format!(
                "#   {}: {}\n",
                t.at,
                serde_json::to_string(&t.action).unwrap_or_default()
            ));
        }
        head.push_str("# `dssim run` on this file reproduces the demo's numbers.\n");
        Ok(head + &body)
    }
}

fn build(model: &ModelConfig, opts: &RunOptions) -> Result<World, LabError> {
    model.build(opts).map_err(|errs| {
        LabError::Run(
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

/// Loads an experiment from text; `dir` anchors relative model paths (an uploaded
/// experiment is read as if it lay in the experiments folder).
pub fn load_text(dir: &Path, name: &str, text: String) -> Result<Experiment, LabError> {
    let file = Path::new(name)
        .file_name()
        .map_or_else(|| "upload.toml".into(), |f| f.to_string_lossy().to_string());
    let file = if file.ends_with(".toml") || file.ends_with(".json") {
        file
    } else {
        format!("{file}.toml")
    };
    let exp = Experiment::from_source(dssim_lab::source::Source::from_text(&dir.join(file), text))?;
    // Resolve every run once so a bad sweep point reports now, not mid-demo.
    for p in 0..exp.points() {
        exp.spec(p * exp.replications as usize)?;
    }
    Ok(exp)
}
