//! Storage adapters: each implements a trait from [`crate::domain::ports`].

pub mod bus;
pub mod dynamo;
pub mod orders;
pub mod postgres;
pub mod ratelimit;
