//! Test support shared by the test files: the Firestore emulator and a fake Kubernetes API.
#![allow(dead_code)]

pub mod emulator;
