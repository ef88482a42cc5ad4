//! Estates: the servers a runbook acts on, behind one interface (lab or windows driver).
