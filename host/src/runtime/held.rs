//! Verdicts of pulls whose bytes a preprocessor still holds (an unfinished line): they are
//! not *ack*ed before the frame that completes them is delivered.
//!
//! A pulled event whose stream's chain holds bytes after it went through gets a *gate* of
//! two parts: its own frames (their batch's verdict, or "nothing of its own to deliver")
//! and its held bytes. The held part is settled by the verdict of the next pull on the
//! stream that produces frames (it carries the held bytes out), or of the frames the
//! stream's end flushes; dropped held bytes (past the byte budget) settle it as handled.
//! The plugin hears one verdict per pull, once both parts are in: *fail* if either failed.

use std::collections::HashMap;

use weir_sdk::abi::{Feedback, FeedbackKind};

use crate::loader::EventId;

/// Keys for verdicts nobody but this module knows (frames a stream's end flushed): above
/// every pull id the host hands out.
const SYNTHETIC: u64 = 1 << 63;

#[derive(Debug, Clone, Copy)]
struct Gate {
    id: EventId,
    parts: u32,
    failed: bool,
}

/// The held pulls of one source.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Per stream: pulls with bytes still in its chain, oldest first.
    waiting: HashMap<u64, Vec<EventId>>,
    /// Per verdict key: the held pulls whose held part that verdict settles.
    dependents: HashMap<u64, Vec<EventId>>,
    /// Per pull: the parts of its verdict still to come.
    gates: HashMap<u64, Gate>,
    next_synthetic: u64,
}

impl Held {
    /// Pull `id` is fed to its stream's chain in more than one piece (so that what one
    /// piece expands to stays bounded): the key of the next piece's frames, whose verdict is
    /// one more part of the pull's. The first call also opens a part that stays open until
    /// the pull is fed whole ([`held_after`](Self::held_after)), so that the verdicts of
    /// the first pieces cannot settle the pull while more are to come.
    pub(crate) fn piece(&mut self, id: EventId) -> u64 {
        match self.gates.get_mut(&id.pull) {
            Some(gate) => gate.parts += 1,
            None => {
                // Its first piece's own part, the feeding part, and this piece.
                self.gates.insert(
                    id.pull,
                    Gate {
                        id,
                        parts: 3,
                        failed: false,
                    },
                );
            }
        }
        let key = SYNTHETIC + self.next_synthetic;
        self.next_synthetic += 1;
        self.dependents.insert(key, vec![id]);
        key
    }

    fn add_part(&mut self, id: EventId) {
        self.gates
            .entry(id.pull)
            .and_modify(|gate| gate.parts += 1)
            .or_insert(Gate {
                id,
                parts: 2,
                failed: false,
            });
    }

    /// A piece of pull `id`'s bytes went through its stream's chain, its frames keyed
    /// `key`: if it `produced` frames, they carry out what earlier pulls had held.
    pub(crate) fn processed(&mut self, id: EventId, key: u64, produced: bool) {
        // The hot path: nothing held anywhere, no lookup.
        if self.waiting.is_empty() {
            return;
        }
        if produced && let Some(waiting) = self.waiting.remove(&id.stream) {
            self.dependents.entry(key).or_default().extend(waiting);
        }
    }

    /// All of pull `id` went through (`in_pieces`: in more than one); the chain is
    /// `holding` bytes afterwards, some of them perhaps its own: its verdict waits for the
    /// frame that carries them out. A verdict this settles goes to `out`.
    pub(crate) fn held_after(
        &mut self,
        id: EventId,
        holding: bool,
        in_pieces: bool,
        out: &mut Vec<Feedback>,
    ) {
        if holding {
            self.add_part(id);
            self.waiting.entry(id.stream).or_default().push(id);
        }
        if in_pieces {
            self.settle(id.pull, false, out);
        }
    }

    /// The stream ended: the key its flushed frames carry. With held pulls, a key of its
    /// own whose verdict settles them; otherwise `fallback`.
    pub(crate) fn finish(&mut self, stream: u64, fallback: u64) -> u64 {
        match self.waiting.remove(&stream) {
            Some(waiting) => {
                let key = SYNTHETIC + self.next_synthetic;
                self.next_synthetic += 1;
                self.dependents.insert(key, waiting);
                key
            }
            None => fallback,
        }
    }

    /// The last pull a synthetic `key` ([`piece`](Self::piece), [`finish`](Self::finish))
    /// stands for, while its verdict is still to come: what a user is shown of it.
    pub(crate) fn pull_of(&self, key: u64) -> Option<EventId> {
        self.dependents
            .get(&key)
            .and_then(|pulls| pulls.last().copied())
    }

    /// Whether `key` is one of [`finish`](Self::finish)'s own.
    pub(crate) fn is_synthetic(key: u64) -> bool {
        key >= SYNTHETIC && key != u64::MAX
    }

    /// The stream's held bytes were dropped (reported on the `err` port): the held part
    /// of its waiting pulls is settled as handled.
    pub(crate) fn dropped(&mut self, stream: u64, out: &mut Vec<Feedback>) {
        for id in self.waiting.remove(&stream).unwrap_or_default() {
            self.settle(id.pull, false, out);
        }
    }

    /// Turns verdicts by key into the verdicts the plugin hears.
    pub(crate) fn resolve(&mut self, verdicts: Vec<Feedback>) -> Vec<Feedback> {
        if self.gates.is_empty() && self.dependents.is_empty() {
            return verdicts;
        }
        let mut out = Vec::with_capacity(verdicts.len());
        for verdict in &verdicts {
            let failed = verdict.kind == FeedbackKind::FAIL;
            for dependent in self.dependents.remove(&verdict.id.pull).unwrap_or_default() {
                self.settle(dependent.pull, failed, &mut out);
            }
            if Self::is_synthetic(verdict.id.pull) {
                continue;
            }
            if self.gates.contains_key(&verdict.id.pull) {
                self.settle(verdict.id.pull, failed, &mut out);
            } else {
                out.push(*verdict);
            }
        }
        out
    }

    fn settle(&mut self, pull: u64, failed: bool, out: &mut Vec<Feedback>) {
        let Some(gate) = self.gates.get_mut(&pull) else {
            return;
        };
        gate.failed |= failed;
        gate.parts -= 1;
        if gate.parts == 0 {
            let gate = self.gates.remove(&pull).expect("present");
            out.push(Feedback {
                id: gate.id,
                kind: if gate.failed {
                    FeedbackKind::FAIL
                } else {
                    FeedbackKind::ACK
                },
            });
        }
    }

    /// Every pull still waiting fails (at stop, or when the instance is replaced): its
    /// bytes will not be delivered. Forgets everything.
    pub(crate) fn fail_all(&mut self) -> Vec<Feedback> {
        let mut gates: Vec<Gate> = self.gates.drain().map(|(_, gate)| gate).collect();
        gates.sort_by_key(|gate| gate.id.pull);
        self.forget();
        gates
            .into_iter()
            .map(|gate| Feedback {
                id: gate.id,
                kind: FeedbackKind::FAIL,
            })
            .collect()
    }

    /// Whether any pull waits for a verdict part.
    pub(crate) fn is_waiting(&self) -> bool {
        !self.gates.is_empty()
    }

    /// Forgets everything (a restarted instance does not know the old one's pulls).
    pub(crate) fn forget(&mut self) {
        self.waiting.clear();
        self.dependents.clear();
        self.gates.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(pull: u64) -> EventId {
        EventId { stream: 1, pull }
    }

    fn verdict(pull: u64, kind: FeedbackKind) -> Feedback {
        Feedback { id: id(pull), kind }
    }

    /// Pull `pull` fed whole.
    fn step(held: &mut Held, pull: u64, produced: bool, holding: bool) {
        held.processed(id(pull), pull, produced);
        held.held_after(id(pull), holding, false, &mut Vec::new());
    }

    #[test]
    fn a_pull_fed_in_pieces_is_acked_once_every_piece_is() {
        let mut held = Held::default();
        held.processed(id(7), 7, true);
        let second = held.piece(id(7));
        held.processed(id(7), second, true);
        let key = |pull| Feedback {
            id: EventId { stream: 1, pull },
            kind: FeedbackKind::ACK,
        };
        // The first pieces are delivered before the rest is fed: not a verdict yet.
        assert!(held.resolve(vec![key(second), key(7)]).is_empty());
        let third = held.piece(id(7));
        held.processed(id(7), third, false);
        let mut out = Vec::new();
        held.held_after(id(7), false, true, &mut out);
        assert!(out.is_empty());
        assert_eq!(kinds(&held.resolve(vec![key(third)])), [(7, true)]);
    }

    fn kinds(verdicts: &[Feedback]) -> Vec<(u64, bool)> {
        verdicts
            .iter()
            .map(|v| (v.id.pull, v.kind == FeedbackKind::ACK))
            .collect()
    }

    #[test]
    fn a_held_pull_waits_for_the_frame_that_completes_it() {
        let mut held = Held::default();
        step(&mut held, 1, false, true); // "half a li"
        step(&mut held, 2, true, false); // "ne\n"
        // Pull 1 had nothing of its own: that part is in at once.
        assert!(held.resolve(vec![verdict(1, FeedbackKind::ACK)]).is_empty());
        // Pull 2's frame is delivered: both pulls are done.
        assert_eq!(
            kinds(&held.resolve(vec![verdict(2, FeedbackKind::ACK)])),
            [(1, true), (2, true)]
        );
    }

    #[test]
    fn a_failed_completing_frame_fails_the_held_pulls_too() {
        let mut held = Held::default();
        step(&mut held, 1, true, true); // "a\nhal"
        step(&mut held, 2, true, false); // "f\n"
        assert!(held.resolve(vec![verdict(1, FeedbackKind::ACK)]).is_empty());
        assert_eq!(
            kinds(&held.resolve(vec![verdict(2, FeedbackKind::FAIL)])),
            [(1, false), (2, false)]
        );
    }

    #[test]
    fn a_streams_end_and_dropped_bytes_settle_the_held_pulls() {
        let mut held = Held::default();
        step(&mut held, 1, false, true);
        step(&mut held, 2, false, true);
        assert!(
            held.resolve(vec![
                verdict(1, FeedbackKind::ACK),
                verdict(2, FeedbackKind::ACK)
            ])
            .is_empty()
        );
        let key = held.finish(1, 99);
        assert!(Held::is_synthetic(key));
        let settled = held.resolve(vec![Feedback {
            id: EventId {
                stream: 1,
                pull: key,
            },
            kind: FeedbackKind::ACK,
        }]);
        assert_eq!(kinds(&settled), [(1, true), (2, true)]);
        assert_eq!(held.finish(1, 99), 99, "nothing held any more");

        step(&mut held, 3, false, true);
        let mut out = held.resolve(vec![verdict(3, FeedbackKind::ACK)]);
        held.dropped(1, &mut out);
        assert_eq!(kinds(&out), [(3, true)]);
    }

    #[test]
    fn at_stop_every_waiting_pull_fails() {
        let mut held = Held::default();
        step(&mut held, 4, false, true);
        step(&mut held, 5, true, true);
        assert_eq!(kinds(&held.fail_all()), [(4, false), (5, false)]);
        assert!(held.resolve(vec![verdict(6, FeedbackKind::ACK)]).len() == 1);
    }
}
