#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod analysis;
pub mod controller;
pub mod duration;
mod error;
pub mod expr;
pub mod judge;
pub mod ledger;
pub mod progression;
pub mod router;

pub use self::error::ReleaseError;
