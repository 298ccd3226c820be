//! Storage adapters: the DynamoDB and PostgreSQL stores implement the traits in
//! [`crate::domain::ports`]; [`bus`] carries notices between replicas and [`ratelimit`] counts
//! login attempts, both over Redis.

pub mod bus;
pub mod dashboard;
pub mod dynamo;
pub mod imports;
pub mod notifications;
pub mod orders;
pub mod postgres;
pub mod ratelimit;
pub mod staff;
