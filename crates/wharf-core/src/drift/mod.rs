//! Drift: does what a model scores still look like what it was trained on?
//!
//! At training the data's [`Profile`] is kept with the model; while it serves (or over a
//! file, or over the prediction log) a [`Window`] of the latest rows is binned the same way
//! and compared variable by variable ([`DriftReport`]). The statistics are in [`stats`],
//! checked against scipy in the workspace's tests.

mod monitor;
mod profile;
pub mod stats;

pub use monitor::{DriftReport, DriftRule, VariableDrift, Window};
pub use profile::{with_profile, with_profile_of, Bins, Distribution, Profile, NUMERIC_BINS, PROFILE_TAG};
