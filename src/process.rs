//! Child processes of steps: spawned in their own process group so a timeout or
//! Ctrl-C kills the whole tree.
