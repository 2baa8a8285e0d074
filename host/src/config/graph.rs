//! The binding graph, built once from the bindings: it finds cycles, tells each connector
//! how it is bound, and gives the runtime its routes.

use super::BindingSpec;
use crate::runtime::Port;

/// How one connector is bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// Connectors its `out` events go to, each once, in binding order.
    pub out: Vec<usize>,
    /// Connectors its `err` events go to.
    pub err: Vec<usize>,
    /// Connectors whose events come to it (told about its circuit breaker).
    pub upstream: Vec<usize>,
}

impl Links {
    /// Whether it is bound as a source (on either port).
    pub fn is_source(&self) -> bool {
        !self.out.is_empty() || !self.err.is_empty()
    }

    /// Whether it is bound as a sink.
    pub fn is_sink(&self) -> bool {
        !self.upstream.is_empty()
    }
}

/// The connectors as nodes, the bindings as edges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindingGraph {
    links: Vec<Links>,
}

/// A cycle: the connectors along it, the first repeated at the end, and the edge that
/// closes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cycle {
    pub(super) path: Vec<usize>,
    pub(super) from: usize,
    pub(super) to: usize,
}

fn push_once(list: &mut Vec<usize>, item: usize) {
    if !list.contains(&item) {
        list.push(item);
    }
}

impl BindingGraph {
    /// The graph of `connectors` connectors and `bindings` (whose indices must be in range).
    pub fn new(connectors: usize, bindings: &[BindingSpec]) -> Self {
        let mut links = vec![Links::default(); connectors];
        for binding in bindings {
            for &to in &binding.to {
                let targets = match binding.port {
                    Port::Out => &mut links[binding.from].out,
                    Port::Err => &mut links[binding.from].err,
                };
                push_once(targets, to);
                push_once(&mut links[to].upstream, binding.from);
            }
        }
        Self { links }
    }

    /// How connector `index` is bound.
    ///
    /// # Panics
    /// If `index` is not a connector of the graph.
    pub fn links(&self, index: usize) -> &Links {
        &self.links[index]
    }

    /// Every connector's links, in connector order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Links> + '_ {
        self.links.iter()
    }

    /// Cycles between different connectors, each reported once at the edge that closes
    /// it (a connector bound to itself is no cycle: it is how it replies on its own
    /// connections).
    pub(super) fn cycles(&self) -> Vec<Cycle> {
        let n = self.links.len();
        let successors = |node: usize| {
            let links = &self.links[node];
            let mut next: Vec<usize> = Vec::new();
            for &to in links.out.iter().chain(&links.err) {
                if to != node {
                    push_once(&mut next, to);
                }
            }
            next
        };
        // Iterative depth-first search with colours: 0 unseen, 1 on the stack, 2 done.
        let mut colour = vec![0u8; n];
        let mut cycles = Vec::new();
        for start in 0..n {
            if colour[start] != 0 {
                continue;
            }
            let mut stack = vec![(start, successors(start), 0usize)];
            colour[start] = 1;
            while let Some((node, next, position)) = stack.last_mut() {
                let node = *node;
                let Some(&to) = next.get(*position) else {
                    colour[node] = 2;
                    stack.pop();
                    continue;
                };
                *position += 1;
                match colour[to] {
                    0 => {
                        colour[to] = 1;
                        stack.push((to, successors(to), 0));
                    }
                    1 => {
                        let first = stack.iter().position(|(n, _, _)| *n == to).unwrap_or(0);
                        let mut path: Vec<usize> =
                            stack[first..].iter().map(|(n, _, _)| *n).collect();
                        path.push(to);
                        cycles.push(Cycle {
                            path,
                            from: node,
                            to,
                        });
                    }
                    _ => {}
                }
            }
        }
        cycles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BindingSpec;

    fn graph(n: usize, edges: &[(usize, Port, &[usize])]) -> BindingGraph {
        let bindings: Vec<BindingSpec> = edges
            .iter()
            .enumerate()
            .map(|(i, (from, port, to))| BindingSpec::for_test(i, *from, *port, to))
            .collect();
        BindingGraph::new(n, &bindings)
    }

    #[test]
    fn links_are_deduplicated_and_know_both_sides() {
        let g = graph(
            3,
            &[
                (0, Port::Out, &[1, 1, 2]),
                (0, Port::Err, &[2]),
                (1, Port::Out, &[1]),
            ],
        );
        assert_eq!(g.links(0).out, [1, 2]);
        assert_eq!(g.links(0).err, [2]);
        assert_eq!(g.links(2).upstream, [0]);
        assert_eq!(g.links(1).upstream, [0, 1]);
        assert!(g.links(0).is_source() && !g.links(0).is_sink());
        assert!(g.links(1).is_source() && g.links(1).is_sink());
        assert!(g.cycles().is_empty(), "a self-binding is no cycle");
    }

    #[test]
    fn a_cycle_is_found_once_with_its_path() {
        let g = graph(
            3,
            &[
                (0, Port::Out, &[1]),
                (1, Port::Out, &[2]),
                (2, Port::Err, &[0]),
            ],
        );
        assert_eq!(
            g.cycles(),
            [Cycle {
                path: vec![0, 1, 2, 0],
                from: 2,
                to: 0
            }]
        );
    }
}
