//! The preparation of the training data: drop nulls, add 10-minute moving averages of x, y
//! and z per user and device, and keep the result as a table for Parquet.
//!
//! The moving averages come from the same [`WindowedMeans`] operator the streaming job
//! uses, fed in arrival order with the same allowed lateness, so the features a model is
//! trained on are computed exactly as the stream will compute them when it is scored.

use wharf_core::{Column, Frame};
use wharf_stream::{WindowSpec, Windowed, WindowedMeans};

use crate::sensors::{drop_nulls, SensorRecord};

/// The window of the moving averages: 10 minutes.
pub const WINDOW_MS: i64 = 10 * 60_000;
/// Readings may arrive up to a minute behind the newest one seen; later ones are dropped.
pub const LATENESS_MS: i64 = 60_000;

/// The streaming job's window over the raw JSON fields.
pub fn window_spec() -> WindowSpec {
    let spec = WindowSpec::new(&["User", "Device"], "Creation_Time", &["x", "y", "z"], WINDOW_MS, LATENESS_MS);
    // The arguments are constants that satisfy every check.
    spec.unwrap_or_else(|e| unreachable!("a valid window: {e}"))
}

/// A reading that was windowed, with its moving averages of x, y and z.
type Averaged = (SensorRecord, Vec<f64>);

/// The prepared table, and what was dropped on the way.
#[derive(Debug)]
pub struct Prepared {
    /// User, Device, Model, x, y, z, x_avg, y_avg, z_avg, gt, Creation_Time.
    pub frame: Frame,
    /// Rows dropped for a null.
    pub dropped_null: usize,
    /// Rows dropped as late.
    pub dropped_late: usize,
}

/// Windows the readings in arrival order, then drops nulls.
///
/// The order matters for training and serving to agree: the stream cannot know a label, so
/// it windows every reading that has x, y and z, labelled or not. Preparing the same way
/// (readings without a sensor value are skipped, unlabelled ones still count in the windows
/// and the watermark, and are dropped afterwards) gives every row exactly the averages the
/// stream computes for it.
pub fn prepare(records: Vec<SensorRecord>) -> wharf_core::Result<Prepared> {
    let total = records.len();
    let mut window = WindowedMeans::new(window_spec())?;
    let mut windowed: Vec<Averaged> = Vec::with_capacity(records.len());
    let mut dropped_late = 0;
    for record in records {
        let (Some(x), Some(y), Some(z)) = (record.x, record.y, record.z) else { continue };
        let key = format!("{}\u{1f}{}", record.user, record.device);
        match window.push(&key, record.creation_time, &[x, y, z]) {
            Windowed::Means(means) => windowed.push((record, means)),
            Windowed::Late { .. } => dropped_late += 1,
        }
    }
    let (kept, _) = drop_nulls(windowed, |(record, _)| record);
    let dropped_null = total - dropped_late - kept.len();
    let text = |f: fn(&SensorRecord) -> Option<String>| Column::Text(kept.iter().map(|(r, _)| f(r)).collect());
    let number = |f: &dyn Fn(&Averaged) -> f64| Column::Numeric(kept.iter().map(f).collect());
    let frame = Frame::from_columns(vec![
        ("User".into(), text(|r| Some(r.user.clone()))),
        ("Device".into(), text(|r| Some(r.device.clone()))),
        ("Model".into(), text(|r| Some(r.model.clone()))),
        ("x".into(), number(&|(r, _)| r.x.unwrap_or(f64::NAN))),
        ("y".into(), number(&|(r, _)| r.y.unwrap_or(f64::NAN))),
        ("z".into(), number(&|(r, _)| r.z.unwrap_or(f64::NAN))),
        ("x_avg".into(), number(&|(_, m)| m[0])),
        ("y_avg".into(), number(&|(_, m)| m[1])),
        ("z_avg".into(), number(&|(_, m)| m[2])),
        ("gt".into(), text(|r| r.gt.clone())),
        ("Creation_Time".into(), number(&|(r, _)| r.creation_time as f64)),
    ])?;
    Ok(Prepared { frame, dropped_null, dropped_late })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::{generate, Plan};

    #[test]
    fn prepared_averages_match_a_hand_computation_over_the_raw_readings() {
        let raw = generate(Plan { users: 1, ..Plan::default() });
        let prepared = prepare(raw.clone()).expect("prepare");
        assert!(prepared.dropped_null > 0 && prepared.dropped_late > 0);

        // By brute force over the raw stream: a reading is late when it is more than the
        // allowed lateness behind the newest reading accepted before it; a row's average is
        // the mean of x over the accepted readings of its device, up to and including it in
        // arrival order, with Creation_Time in [t - 10 min, t].
        let readings: Vec<&SensorRecord> =
            raw.iter().filter(|r| r.x.is_some() && r.y.is_some() && r.z.is_some()).collect();
        let mut accepted: Vec<&SensorRecord> = Vec::new();
        let mut newest = i64::MIN;
        let mut by_hand = Vec::new();
        for r in readings {
            if newest != i64::MIN && r.creation_time < newest - LATENESS_MS {
                continue;
            }
            newest = newest.max(r.creation_time);
            accepted.push(r);
            let t = r.creation_time;
            let xs: Vec<f64> = accepted
                .iter()
                .filter(|a| a.device == r.device && a.creation_time <= t && a.creation_time >= t - WINDOW_MS)
                .filter_map(|a| a.x)
                .collect();
            if r.gt.is_some() {
                by_hand.push(xs.iter().sum::<f64>() / xs.len() as f64);
            }
        }
        let Some(Column::Numeric(x_avg)) = prepared.frame.column("x_avg") else { panic!("x_avg") };
        assert_eq!(x_avg.len(), by_hand.len());
        for (row, (got, want)) in x_avg.iter().zip(&by_hand).enumerate() {
            assert!((got - want).abs() < 1e-9, "row {row}: {got} vs {want}");
        }
    }
}
