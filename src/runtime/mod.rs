//! Contexts, listeners, connections and the event loop (being written).
