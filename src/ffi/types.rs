//! C types of the nopoll API (filled in by the header work).
