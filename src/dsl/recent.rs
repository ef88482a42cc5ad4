//! A cache of the last few answers: what makes a closure declared in a loop cost its
//! bookkeeping once, not once per step, without keeping an entry per closure of a
//! runbook that writes 10,000 different ones (where a map would only cost).

/// The last [`RECENT`] `(key, value)` pairs asked for or put, newest last.
pub(crate) struct Recent<K, V>(Vec<(K, V)>);

/// How many answers are kept: enough for the few closures one loop body declares.
const RECENT: usize = 4;

impl<K, V: Clone> Recent<K, V> {
    /// The value kept for the newest key that `is` accepts (a key can be compared
    /// in its borrowed form without building one).
    pub(crate) fn get(&self, is: impl Fn(&K) -> bool) -> Option<V> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| is(k))
            .map(|(_, v)| v.clone())
    }

    /// Keep `value` for `key`, forgetting the oldest answer when full.
    pub(crate) fn put(&mut self, key: K, value: V) {
        if self.0.len() == RECENT {
            self.0.remove(0);
        }
        self.0.push((key, value));
    }
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Recent(Vec::with_capacity(RECENT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_few_answers_only() {
        let mut r = Recent::default();
        for i in 0..6 {
            r.put(i, i * 10);
        }
        assert_eq!(r.get(|&k| k == 5), Some(50));
        assert_eq!(r.get(|&k| k == 2), Some(20));
        assert_eq!(r.get(|&k| k == 1), None, "the oldest are forgotten");
    }
}
