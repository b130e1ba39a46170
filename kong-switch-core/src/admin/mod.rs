//! Kong Admin API client.

mod request;

pub use request::{AdminRequest, Method, encode_segment};
