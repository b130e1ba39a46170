//! Kong stand-in and test harness.
