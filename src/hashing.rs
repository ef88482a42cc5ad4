//! The hasher of waymark's in-memory indexes: step names, function names, and
//! addresses used as identities during a load.
//!
//! Their keys come from the operator's own runbook or from waymark itself, so SipHash's
//! resistance to chosen keys buys nothing; hashing 30,000 names (each step's, then each
//! `after` entry) with it was a tenth of building a 10,000-step plan, and the closure
//! bookkeeping of a load hashes several keys per declared step.

/// foldhash (already built for hashbrown), seeded per process like SipHash's: iteration
/// order means nothing either way.
pub(crate) type FastHasher = foldhash::fast::RandomState;

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, FastHasher>;
