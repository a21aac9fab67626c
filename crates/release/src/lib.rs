#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod analysis;
pub mod controller;
pub mod duration;
pub mod env;
mod error;
pub mod expr;
pub mod guard;
pub mod hooks;
pub mod judge;
pub mod k8s;
pub mod ledger;
pub mod progression;
pub mod provider;
pub mod router;
pub mod run;
pub mod spec;

pub use self::error::ReleaseError;
