//! The sensor records of the demo's data set (the Heterogeneity Human Activity Recognition
//! layout: ten fields per accelerometer reading), a seeded generator of realistic ones, and
//! loading them from CSV or JSON lines.

use std::f64::consts::TAU;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// The activities, as the `gt` (ground truth) field names them.
pub const ACTIVITIES: [&str; 6] = ["bike", "sit", "stand", "walk", "stairsup", "stairsdown"];

/// One accelerometer reading. Every field but the names may be missing, as in the real data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorRecord {
    /// When the reading reached the collector (epoch ms): the order of the stream.
    #[serde(rename = "Arrival_Time")]
    pub arrival_time: i64,
    /// When the device took the reading (epoch ms): the event time.
    #[serde(rename = "Creation_Time")]
    pub creation_time: i64,
    /// The physical device (`nexus4_1`).
    #[serde(rename = "Device")]
    pub device: String,
    /// The reading's number on its device.
    #[serde(rename = "Index")]
    pub index: i64,
    /// The device model (`nexus4` phone, `gear` watch).
    #[serde(rename = "Model")]
    pub model: String,
    /// The user (`a` … `f`).
    #[serde(rename = "User")]
    pub user: String,
    /// The activity label; missing for unlabelled readings.
    pub gt: Option<String>,
    /// Acceleration along x (m/s²).
    pub x: Option<f64>,
    /// Acceleration along y.
    pub y: Option<f64>,
    /// Acceleration along z.
    pub z: Option<f64>,
}

/// The field names in file order.
pub const FIELDS: [&str; 10] =
    ["Arrival_Time", "Creation_Time", "Device", "Index", "Model", "User", "gt", "x", "y", "z"];

impl SensorRecord {
    /// True when every field the models need is present.
    pub fn complete(&self) -> bool {
        self.gt.is_some() && self.x.is_some() && self.y.is_some() && self.z.is_some()
    }
}

/// How many users, how long each activity lasts, how many readings.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Users `a`, `b`, … each with a phone and a watch.
    pub users: usize,
    /// Minutes each activity lasts.
    pub minutes_per_activity: i64,
    /// Seconds between readings of one device.
    pub seconds_between: i64,
    /// The seed of everything random.
    pub seed: u64,
}

impl Default for Plan {
    fn default() -> Self {
        Plan { users: 6, minutes_per_activity: 15, seconds_between: 20, seed: 2018 }
    }
}

/// Mean acceleration of each activity on a phone in the pocket (gravity falls on the axis
/// the phone's orientation gives), and how much it shakes.
fn signature(activity: &str) -> ([f64; 3], f64, f64) {
    // (mean x, y, z), noise standard deviation, amplitude of the periodic motion
    match activity {
        "bike" => ([3.5, 6.0, 6.5], 1.0, 1.5),
        "sit" => ([0.5, 2.0, 9.4], 0.3, 0.0),
        "stand" => ([0.2, 9.6, 1.0], 0.3, 0.0),
        "walk" => ([1.5, 9.0, 2.5], 1.2, 2.0),
        "stairsup" => ([2.5, 8.2, 3.8], 1.4, 2.2),
        _ => ([1.0, 10.6, 1.2], 1.6, 2.6),
    }
}

/// A standard normal draw (Box–Muller), so the generator needs nothing beyond `rand`.
fn normal(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (TAU * v).cos()
}

/// Generates the readings of every user's phone and watch while they go through every
/// activity in their own order, sorted by arrival time: the stream as the collector saw it.
///
/// Realism: a watch sits at another angle and shakes more than a phone; each user has a
/// slight bias; readings arrive 0–3 s after they are taken, and 0.5 % of them are held up
/// for 25 minutes (a phone out of reach); about 2 % lose an axis and 1 % their label.
pub fn generate(plan: Plan) -> Vec<SensorRecord> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(plan.seed);
    let start = 1_538_000_000_000_i64; // September 2018: any fixed start keeps runs reproducible
    let per_activity = plan.minutes_per_activity * 60 / plan.seconds_between;
    let mut records = Vec::new();
    for u in 0..plan.users {
        let user = ((b'a' + u as u8) as char).to_string();
        let bias: [f64; 3] = [normal(&mut rng) * 0.3, normal(&mut rng) * 0.3, normal(&mut rng) * 0.3];
        let mut order: Vec<&str> = ACTIVITIES.to_vec();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.gen_range(0..=i));
        }
        for (model, number) in [("nexus4", u % 2 + 1), ("gear", u % 2 + 1)] {
            let device = format!("{model}_{number}");
            let watch = model == "gear";
            let phase: f64 = rng.gen_range(0.0..TAU);
            let mut index = 0;
            for (a, activity) in order.iter().enumerate() {
                let (mean, noise, swing) = signature(activity);
                for step in 0..per_activity {
                    let t = start + (a as i64 * per_activity + step) * plan.seconds_between * 1000;
                    let created = t + rng.gen_range(0..plan.seconds_between * 1000 / 4);
                    let motion = swing * (phase + step as f64 * 1.3).sin();
                    let mut axis = |k: usize| {
                        let (gain, offset, shake) =
                            if watch { ([1.2, 0.9, 1.1][k], [0.8, -0.5, 0.6][k], 1.5) } else { (1.0, 0.0, 1.0) };
                        (mean[k] + motion * [0.6, 1.0, 0.4][k]) * gain
                            + offset
                            + bias[k]
                            + normal(&mut rng) * noise * shake
                    };
                    let (x, y, z) = (axis(0), axis(1), axis(2));
                    let delay = if rng.gen_bool(0.005) { 25 * 60_000 } else { rng.gen_range(0..3_000) };
                    let mut record = SensorRecord {
                        arrival_time: created + delay,
                        creation_time: created,
                        device: device.clone(),
                        index,
                        model: model.to_string(),
                        user: user.clone(),
                        gt: Some(activity.to_string()),
                        x: Some(round(x)),
                        y: Some(round(y)),
                        z: Some(round(z)),
                    };
                    match rng.gen_range(0..100) {
                        0 => record.x = None,
                        1 => record.z = None,
                        2 => record.gt = None,
                        _ => {}
                    }
                    records.push(record);
                    index += 1;
                }
            }
        }
    }
    records.sort_by_key(|r| (r.arrival_time, r.index));
    records
}

/// Sensors report to a few decimals; so does the generator.
fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Records that loaded, and how many rows did not.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The records, in file order.
    pub records: Vec<SensorRecord>,
    /// `(line, reason)` of each row that is not a sensor record.
    pub malformed: Vec<(usize, String)>,
}

/// Reads JSON lines; a line that is not a sensor record is counted, with its line number.
/// (The demo streams the JSON lines instead; the tests check both formats load the same.)
#[cfg_attr(not(test), allow(dead_code))]
pub fn from_jsonl(text: &str) -> Loaded {
    let mut loaded = Loaded::default();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str::<SensorRecord>(line) {
            Ok(record) => loaded.records.push(record),
            Err(e) => loaded.malformed.push((i + 1, e.to_string())),
        }
    }
    loaded
}

/// Reads CSV with the ten fields as header; empty cells are missing values.
pub fn from_csv(text: &str) -> Result<Loaded, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| format!("CSV header: {e}"))?.clone();
    if headers.iter().collect::<Vec<_>>() != FIELDS {
        return Err(format!(
            "expected the columns {}, found {}",
            FIELDS.join(","),
            headers.iter().collect::<Vec<_>>().join(",")
        ));
    }
    let mut loaded = Loaded::default();
    for (i, row) in reader.deserialize::<SensorRecord>().enumerate() {
        match row {
            Ok(record) => loaded.records.push(record),
            Err(e) => loaded.malformed.push((i + 2, e.to_string())),
        }
    }
    Ok(loaded)
}

/// The records as CSV (the training input's format).
pub fn to_csv(records: &[SensorRecord]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for record in records {
        writer.serialize(record)?;
    }
    writer.into_inner().map_err(|e| e.into_error().into())
}

/// The records as JSON lines (the stream's format).
pub fn to_jsonl(records: &[SensorRecord]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    for record in records {
        serde_json::to_writer(&mut out, record)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// The "drop nulls" step: keeps the rows whose record has every required field,
/// in order, and says how many were dropped. Rows may carry more than the record (its
/// moving averages, say).
pub fn drop_nulls<T>(rows: Vec<T>, record: impl Fn(&T) -> &SensorRecord) -> (Vec<T>, usize) {
    let before = rows.len();
    let kept: Vec<T> = rows.into_iter().filter(|row| record(row).complete()).collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Vec<SensorRecord> {
        generate(Plan { users: 2, minutes_per_activity: 4, ..Plan::default() })
    }

    #[test]
    fn sensor_records_load_from_csv_and_json_lines() {
        let records = small();
        assert_eq!(records.len(), 2 * 2 * 6 * 12);
        let csv = String::from_utf8(to_csv(&records).expect("csv")).expect("utf8");
        assert!(csv.starts_with(&FIELDS.join(",")));
        let jsonl = String::from_utf8(to_jsonl(&records).expect("jsonl")).expect("utf8");
        let from_csv = from_csv(&csv).expect("load csv");
        let from_json = from_jsonl(&jsonl);
        assert!(from_csv.malformed.is_empty() && from_json.malformed.is_empty());
        assert_eq!(from_csv.records, records);
        assert_eq!(from_json.records, records);
    }

    #[test]
    fn malformed_rows_are_counted_with_their_line() {
        let good = String::from_utf8(to_jsonl(&small()[..2]).expect("jsonl")).expect("utf8");
        let text = format!("{good}{{\"User\":\"a\"}}\nnot json\n");
        let loaded = from_jsonl(&text);
        assert_eq!(loaded.records.len(), 2);
        assert_eq!(loaded.malformed.iter().map(|(line, _)| *line).collect::<Vec<_>>(), vec![3, 4]);
        assert!(loaded.malformed[0].1.contains("missing field"), "{:?}", loaded.malformed);
        assert!(from_csv("a,b\n1,2\n").is_err(), "a file with other columns is refused");
    }

    #[test]
    fn drop_nulls_removes_exactly_the_rows_with_a_missing_required_field() {
        let records = generate(Plan::default());
        let incomplete =
            records.iter().filter(|r| r.gt.is_none() || r.x.is_none() || r.y.is_none() || r.z.is_none()).count();
        assert!(incomplete > 0, "the generator injects nulls");
        let (kept, dropped) = drop_nulls(records.clone(), |r| r);
        assert_eq!(dropped, incomplete);
        assert!(kept.iter().all(SensorRecord::complete));
        let expected: Vec<SensorRecord> =
            records.into_iter().filter(|r| r.gt.is_some() && r.x.is_some() && r.y.is_some() && r.z.is_some()).collect();
        assert_eq!(kept, expected, "order kept, nothing else removed");
    }

    #[test]
    fn the_generator_is_seeded_and_activities_differ() {
        assert_eq!(generate(Plan::default()), generate(Plan::default()));
        assert_ne!(generate(Plan::default()), generate(Plan { seed: 1, ..Plan::default() }));
        // Phones sitting have gravity on z, standing on y.
        let mean = |activity: &str, pick: fn(&SensorRecord) -> Option<f64>| {
            let v: Vec<f64> = small()
                .iter()
                .filter(|r| r.model == "nexus4" && r.gt.as_deref() == Some(activity))
                .filter_map(pick)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(mean("sit", |r| r.z) > 8.0 && mean("stand", |r| r.z) < 3.0);
        assert!(mean("stand", |r| r.y) > 8.0 && mean("sit", |r| r.y) < 4.0);
    }
}
