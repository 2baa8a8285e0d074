//! Applying a changed pipeline to a running one: what changes (the plan), and waiting for
//! the changes to be done (the follow-up).
//!
//! Connectors are matched by id. The world carries a plan out in an order that loses
//! nothing (see [`super::world`]):
//!
//! 1. every surviving connector is rewired (new routes, and the senders of new connectors)
//!    and answers once it has, so that no source sends to a removed sink any more;
//! 2. new connectors start (sinks that new sources feed were rewired before they exist);
//! 3. changed connectors are upgraded in place, to their new settings;
//! 4. once every survivor has answered, removed connectors retire: they drain what they
//!    produced, deliver what already waits for them, and stop.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::Sender;
use std::time::Duration;

use tokio::sync::oneshot;

use super::WorldEvent;
use super::connector::{Control, Msg};
use super::control::{Applied, Upgraded};
use crate::config::{ConnectorSpec, Links, PipelineSpec};

/// A running connector, as the plan compares it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Current<'a> {
    /// Its runtime index.
    pub(super) index: usize,
    pub(super) spec: &'a ConnectorSpec,
    /// The plugin file it runs, and its version.
    pub(super) plugin: (&'a Path, &'a str),
    /// Its routes, in runtime indices.
    pub(super) links: &'a Links,
}

/// What applying a pipeline changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    /// The runtime index of each connector of the new pipeline, in its order: existing
    /// ones keep theirs, new ones get the next free ones.
    pub(super) indices: Vec<usize>,
    /// Each new-pipeline connector's routes, in runtime indices (same order).
    pub(super) links: Vec<Links>,
    /// New connectors (positions in the new pipeline).
    pub(super) added: Vec<usize>,
    /// Connectors not in the new pipeline (runtime indices).
    pub(super) removed: Vec<usize>,
    /// Connectors whose settings or plugin change (positions in the new pipeline).
    pub(super) replaced: Vec<usize>,
    /// Existing connectors whose routes change (positions in the new pipeline).
    pub(super) rewired: Vec<usize>,
    /// Existing connectors that change in no way (positions in the new pipeline).
    pub(super) unchanged: Vec<usize>,
}

/// Routes named by connector id, sorted, to compare across two numberings.
fn named(links: &Links, id: impl Fn(usize) -> String) -> [Vec<String>; 3] {
    let names = |list: &[usize]| {
        let mut names: Vec<String> = list.iter().map(|&i| id(i)).collect();
        names.sort();
        names
    };
    [names(&links.out), names(&links.err), names(&links.upstream)]
}

fn sides(links: &Links) -> &'static str {
    match (links.is_source(), links.is_sink()) {
        (true, true) => "bound as a source and a sink",
        (true, false) => "bound as a source",
        (false, true) => "bound as a sink",
        (false, false) => "left unbound",
    }
}

/// Compares the running connectors (`current`; `ids` names every runtime index, `next`
/// is the first free one) with `new`, whose connectors run `plugins` (file, version).
///
/// # Errors
/// Every connector that would be bound on other sides than it is: a sink cannot become a
/// source in place (its instance was made for the sides it is bound on).
pub(super) fn plan(
    current: &[Current<'_>],
    ids: &[String],
    next: usize,
    new: &PipelineSpec,
    plugins: &[(&Path, &str)],
) -> Result<Plan, String> {
    let by_id: BTreeMap<&str, &Current<'_>> =
        current.iter().map(|c| (c.spec.id.as_str(), c)).collect();
    let mut plan = Plan::default();
    let mut fresh = next;
    for connector in &new.connectors {
        if let Some(running) = by_id.get(connector.id.as_str()) {
            plan.indices.push(running.index);
        } else {
            plan.indices.push(fresh);
            fresh += 1;
        }
    }
    let mut refused = Vec::new();
    for (position, connector) in new.connectors.iter().enumerate() {
        let graph = new.graph.links(position);
        let links = Links {
            out: graph.out.iter().map(|&k| plan.indices[k]).collect(),
            err: graph.err.iter().map(|&k| plan.indices[k]).collect(),
            upstream: graph.upstream.iter().map(|&k| plan.indices[k]).collect(),
        };
        let Some(running) = by_id.get(connector.id.as_str()) else {
            plan.added.push(position);
            plan.links.push(links);
            continue;
        };
        if sides(running.links) != sides(&links) {
            refused.push(format!(
                "connector `{}` is {} and would be {}: an instance cannot change sides in \
                 place (give it a new id: the old one stops, the new one starts)",
                connector.id,
                sides(running.links),
                sides(&links)
            ));
        }
        let same = running.spec.same_settings(connector) && running.plugin == plugins[position];
        let old_routes = named(running.links, |i| ids[i].clone());
        let new_routes = named(graph, |k| new.connectors[k].id.clone());
        if !same {
            plan.replaced.push(position);
        }
        if old_routes != new_routes {
            plan.rewired.push(position);
        }
        if same && old_routes == new_routes {
            plan.unchanged.push(position);
        }
        plan.links.push(links);
    }
    if !refused.is_empty() {
        return Err(refused.join("; "));
    }
    let kept: Vec<usize> = plan.indices.clone();
    plan.removed = current
        .iter()
        .map(|c| c.index)
        .filter(|index| !kept.contains(index))
        .collect();
    Ok(plan)
}

/// A connector removed from the pipeline, to retire.
pub(super) struct Retiring {
    pub(super) id: String,
    pub(super) index: usize,
    pub(super) inbox: Sender<Msg>,
    /// The sources that fed it: if it does not stop in time, they stop waiting for it.
    pub(super) upstream: Vec<Sender<Msg>>,
    /// Its "stopped" (with the error of `on_stop`, if any).
    pub(super) stopped: oneshot::Receiver<Option<String>>,
}

/// What the follow-up of an apply waits for.
pub(super) struct FollowUp {
    /// Every survivor's "rewired" answer.
    pub(super) rewired: Vec<oneshot::Receiver<()>>,
    /// Each new connector's "running" (or why it is not).
    pub(super) starting: Vec<(String, oneshot::Receiver<Result<(), String>>)>,
    /// The connectors to retire once they all answered.
    pub(super) retiring: Vec<Retiring>,
    /// Each replaced connector's upgrade outcome.
    pub(super) upgrades: Vec<(String, oneshot::Receiver<Result<Upgraded, String>>)>,
    /// What is known already (started, rewired, unchanged).
    pub(super) applied: Applied,
    /// The run's drain timeout: the longest a removed connector drains, an upgrade takes
    /// to connect, an old instance takes to drain.
    pub(super) drain_timeout: Duration,
    /// The run's stop timeout.
    pub(super) stop_timeout: Duration,
}

impl FollowUp {
    /// Waits for everything (each wait within the deadline), then hands the outcome to the
    /// world, which answers `reply`.
    pub(super) async fn run(
        mut self,
        world: tokio::sync::mpsc::UnboundedSender<WorldEvent>,
        reply: oneshot::Sender<Result<Applied, String>>,
    ) {
        let (drain, stop) = (self.drain_timeout, self.stop_timeout);
        let deadline = tokio::time::Instant::now() + drain;
        for answer in self.rewired {
            // A survivor stuck in a plugin call answers late: its sends to a retired sink
            // then fail back to it, which loses nothing.
            let _ = tokio::time::timeout_at(deadline, answer).await;
        }
        for retiring in &self.retiring {
            let _ = retiring.inbox.send(Msg::Control(Control::Retire));
        }
        let now = tokio::time::Instant::now();
        // A retiring connector drains for up to `drain`, then stops within `stop`.
        let stopped_by = now + drain + stop + Duration::from_secs(1);
        // An upgrade connects for up to `drain`, then the old instance drains for as long.
        let upgraded_by = now + drain * 2 + stop;
        for (id, answer) in self.starting {
            // `started` lists it either way: it was started, and keeps trying if it can.
            match tokio::time::timeout_at(now + drain, answer).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(why))) => self.applied.failed.push((id, why)),
                Ok(Err(_)) => self
                    .applied
                    .failed
                    .push((id, "stopped before it ran".to_owned())),
                Err(_) => self.applied.failed.push((
                    id,
                    format!("started, but not connected within {drain:?} (it keeps trying)"),
                )),
            }
        }
        for (id, answer) in self.upgrades {
            match tokio::time::timeout_at(upgraded_by, answer).await {
                Ok(Ok(Ok(upgraded))) => self.applied.replaced.push(upgraded),
                Ok(Ok(Err(why))) => self.applied.failed.push((id, why)),
                Ok(Err(_)) => self.applied.failed.push((
                    id,
                    "the connector stopped before it was replaced".to_owned(),
                )),
                Err(_) => self.applied.failed.push((
                    id,
                    "not replaced in time (the replacement goes on in the background)".to_owned(),
                )),
            }
        }
        for retiring in self.retiring {
            let Retiring {
                id,
                index,
                upstream,
                stopped,
                ..
            } = retiring;
            match tokio::time::timeout_at(stopped_by, stopped).await {
                Ok(Ok(None)) => self.applied.stopped.push(id),
                Ok(Ok(Some(error))) => {
                    self.applied.stopped.push(id.clone());
                    self.applied
                        .failed
                        .push((id, format!("stopped, but stopping failed: {error}")));
                }
                Ok(Err(_)) | Err(_) => {
                    tracing::error!(connector = %id, "removed connector did not stop in time: its thread is abandoned, and what awaits its verdicts fails");
                    self.applied.failed.push((
                        id,
                        "did not stop in time (stuck in a plugin call): abandoned".to_owned(),
                    ));
                }
            }
            // Stopped or abandoned, it answers nothing more: a batch a source sent it late
            // (a source that took its new routes after the deadline) fails back instead of
            // waiting for ever. Verdicts it did give are not given twice.
            for source in upstream {
                let _ = source.send(Msg::SinkGone(index));
            }
        }
        let _ = world.send(WorldEvent::ApplyDone(Box::new((reply, self.applied))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec(text: &str) -> PipelineSpec {
        PipelineSpec::parse(&PathBuf::from("test.toml"), text.to_owned()).unwrap()
    }

    const RUNNING: &str = r#"
[[connector]]
id = "a"
plugin = "blaster"
[[connector]]
id = "b"
plugin = "blackhole"
[[connector]]
id = "c"
plugin = "blackhole"
[[binding]]
from = "a"
to = ["b", "c"]
"#;

    fn plan_for(new: &str) -> Result<Plan, String> {
        let running = spec(RUNNING);
        let ids: Vec<String> = running.connectors.iter().map(|c| c.id.clone()).collect();
        let file = Path::new("/p/lib.so");
        let current: Vec<Current<'_>> = running
            .connectors
            .iter()
            .enumerate()
            .map(|(index, spec)| Current {
                index,
                spec,
                plugin: (file, "0.1.0"),
                links: running.graph.links(index),
            })
            .collect();
        let new = spec(new);
        let plugins = vec![(file, "0.1.0"); new.connectors.len()];
        plan(&current, &ids, 3, &new, &plugins)
    }

    #[test]
    fn the_same_pipeline_changes_nothing() {
        let plan = plan_for(RUNNING).unwrap();
        assert_eq!(plan.unchanged, [0, 1, 2]);
        assert!(plan.added.is_empty() && plan.removed.is_empty());
        assert!(plan.replaced.is_empty() && plan.rewired.is_empty());
    }

    #[test]
    fn added_removed_changed_and_rewired_connectors_are_told_apart() {
        let plan = plan_for(
            r#"
[[connector]]
id = "d"
plugin = "blackhole"
[[connector]]
id = "a"
plugin = "blaster"
config = { rate = 5 }
[[connector]]
id = "b"
plugin = "blackhole"
[[binding]]
from = "a"
to = ["b", "d"]
"#,
        )
        .unwrap();
        assert_eq!(plan.indices, [3, 0, 1], "existing ids keep their index");
        assert_eq!(plan.added, [0]);
        assert_eq!(plan.removed, [2]);
        assert_eq!(plan.replaced, [1], "a's config changed");
        assert_eq!(plan.rewired, [1], "a feeds d instead of c");
        assert!(
            plan.unchanged.contains(&2),
            "b is bound and set up as before"
        );
        assert_eq!(plan.links[1].out, [1, 3], "in runtime indices");
        assert_eq!(plan.links[0].upstream, [0]);
    }

    #[test]
    fn a_connector_cannot_change_sides_in_place() {
        let error = plan_for(
            r#"
[[connector]]
id = "a"
plugin = "blaster"
[[connector]]
id = "b"
plugin = "blackhole"
[[connector]]
id = "c"
plugin = "blackhole"
[[binding]]
from = "a"
to = ["b"]
[[binding]]
from = "c"
to = ["b"]
"#,
        )
        .unwrap_err();
        assert!(
            error.contains("`c` is bound as a sink and would be bound as a source"),
            "{error}"
        );
        let error = plan_for(
            "[[connector]]\nid = \"a\"\nplugin = \"blaster\"\n\
             [[connector]]\nid = \"b\"\nplugin = \"blackhole\"\n\
             [[binding]]\nfrom = \"a\"\nto = [\"b\"]\n\
             [[connector]]\nid = \"c\"\nplugin = \"blackhole\"\n",
        )
        .unwrap_err();
        assert!(
            error.contains("`c` is bound as a sink and would be left unbound"),
            "{error}"
        );
    }
}
