//! The only place that touches sockets (being written).
