//! Kong entities.
