//! The one lock abstraction (being written).
