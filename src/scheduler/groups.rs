//! Run slots: `--concurrency` for the whole run and each concurrency group's limit.
//! A step takes one slot of each before its `step_started` is written and gives them
//! back when its last attempt ends; gates take none.

use super::Node;
use std::collections::HashMap;

/// The run's slots and its groups', by index, so the launch loop neither hashes nor
/// clones group names.
pub(super) struct Slots {
    concurrency: usize,
    /// Nodes holding a run slot: starting, executing, ending or waiting to retry.
    pub(super) running: usize,
    /// Group of each node.
    of: Vec<Option<usize>>,
    limit: Vec<usize>,
    in_group: Vec<usize>,
}

impl Slots {
    pub(super) fn new(nodes: &[Node], concurrency: usize, limits: &HashMap<String, usize>) -> Self {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut limit = Vec::new();
        let of = nodes
            .iter()
            .map(|node| {
                let g = node.group.as_deref()?;
                Some(*index.entry(g).or_insert_with(|| {
                    limit.push(limits.get(g).copied().unwrap_or(usize::MAX));
                    limit.len() - 1
                }))
            })
            .collect();
        let in_group = vec![0; limit.len()];
        Slots {
            concurrency: concurrency.max(1),
            running: 0,
            of,
            limit,
            in_group,
        }
    }

    /// Every run slot is taken.
    pub(super) fn full(&self) -> bool {
        self.running >= self.concurrency
    }

    /// Take a run slot and one of `node`'s group, if the group has one free (always,
    /// without a group). The caller checked [`Slots::full`].
    pub(super) fn try_take(&mut self, node: usize) -> bool {
        match self.of[node] {
            Some(g) if self.in_group[g] >= self.limit[g] => return false,
            Some(g) => self.in_group[g] += 1,
            None => {}
        }
        self.running += 1;
        true
    }

    /// Give back the slots `node` holds.
    pub(super) fn free(&mut self, node: usize) {
        self.running -= 1;
        if let Some(g) = self.of[node] {
            self.in_group[g] = self.in_group[g].saturating_sub(1);
        }
    }
}
