//! How many candidate features a forest's split draws: [`MaxFeatures`].

use wharf_core::{Result, WharfError};

/// How many features a random forest draws as candidates at each split, named and resolved
/// as scikit-learn's `max_features` is, so a setting carries over unchanged.
///
/// A forest of trees that may all split on the same strong features is a forest of similar
/// trees; drawing a fresh subset at every split (not once per tree) is what decorrelates
/// them while still letting every tree use every feature somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum MaxFeatures {
    /// `max(1, ⌊√width⌋)`: scikit-learn's default for classification forests.
    #[default]
    Sqrt,
    /// `max(1, ⌊log₂ width⌋)`.
    Log2,
    /// Every feature (scikit-learn's `None`, or `1.0`): bagged trees without feature sampling.
    All,
    /// This many features (at most the width).
    Count(usize),
    /// `max(1, ⌊fraction × width⌋)`, for a fraction in (0, 1].
    Fraction(f64),
}

impl MaxFeatures {
    /// The number of candidate features for a design matrix `width` columns wide.
    pub fn resolve(self, width: usize) -> Result<usize> {
        let width = width.max(1);
        let n = match self {
            MaxFeatures::Sqrt => (width as f64).sqrt() as usize,
            MaxFeatures::Log2 => (width as f64).log2() as usize,
            MaxFeatures::All => width,
            MaxFeatures::Count(0) => return Err(invalid("a count of features must be at least 1")),
            MaxFeatures::Count(n) => n,
            MaxFeatures::Fraction(f) if !(f > 0.0 && f <= 1.0) => {
                return Err(invalid(format!("a fraction of the features must be in (0, 1], got {f}")))
            }
            MaxFeatures::Fraction(f) => (f * width as f64) as usize,
        };
        Ok(n.clamp(1, width))
    }
}

fn invalid(message: impl Into<String>) -> WharfError {
    WharfError::invalid("max_features", message)
}

impl From<usize> for MaxFeatures {
    fn from(n: usize) -> Self {
        MaxFeatures::Count(n)
    }
}

impl std::fmt::Display for MaxFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxFeatures::Sqrt => f.write_str("sqrt"),
            MaxFeatures::Log2 => f.write_str("log2"),
            MaxFeatures::All => f.write_str("all"),
            MaxFeatures::Count(n) => write!(f, "{n}"),
            // `{:?}` keeps the decimal point, so the text parses back as a fraction.
            MaxFeatures::Fraction(x) => write!(f, "{x:?}"),
        }
    }
}

impl std::str::FromStr for MaxFeatures {
    type Err = WharfError;

    /// `sqrt`, `log2`, `all` (or `none`, scikit-learn's spelling), a whole number of
    /// features (`7`), or a fraction of them with a decimal point (`0.5`; `1.0` is all).
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let parsed = match s.to_ascii_lowercase().as_str() {
            "sqrt" | "auto" => MaxFeatures::Sqrt,
            "log2" => MaxFeatures::Log2,
            "all" | "none" => MaxFeatures::All,
            t if t.contains(['.', 'e']) => MaxFeatures::Fraction(t.parse().map_err(|_| unknown(s))?),
            t => MaxFeatures::Count(t.parse().map_err(|_| unknown(s))?),
        };
        parsed.resolve(1)?;
        Ok(parsed)
    }
}

fn unknown(s: &str) -> WharfError {
    invalid(format!("'{s}' is not sqrt, log2, all, a count of features or a fraction such as 0.5"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_scikit_learn() {
        // sklearn: max(1, int(sqrt(n))), max(1, int(log2(n))), max(1, int(f * n)).
        assert_eq!(MaxFeatures::Sqrt.resolve(20).unwrap(), 4);
        assert_eq!(MaxFeatures::Sqrt.resolve(30).unwrap(), 5);
        assert_eq!(MaxFeatures::Sqrt.resolve(1).unwrap(), 1);
        assert_eq!(MaxFeatures::Log2.resolve(20).unwrap(), 4);
        assert_eq!(MaxFeatures::Log2.resolve(1).unwrap(), 1);
        assert_eq!(MaxFeatures::All.resolve(20).unwrap(), 20);
        assert_eq!(MaxFeatures::Fraction(0.33).resolve(20).unwrap(), 6);
        assert_eq!(MaxFeatures::Fraction(0.01).resolve(20).unwrap(), 1);
        assert_eq!(MaxFeatures::Count(7).resolve(20).unwrap(), 7);
        assert_eq!(MaxFeatures::Count(70).resolve(20).unwrap(), 20);
        assert!(MaxFeatures::Count(0).resolve(20).is_err());
        assert!(MaxFeatures::Fraction(1.5).resolve(20).is_err());
        assert!(MaxFeatures::Fraction(f64::NAN).resolve(20).is_err());
    }

    #[test]
    fn parses_and_prints_back() {
        for (text, want) in [
            ("sqrt", MaxFeatures::Sqrt),
            ("log2", MaxFeatures::Log2),
            ("all", MaxFeatures::All),
            ("None", MaxFeatures::All),
            ("7", MaxFeatures::Count(7)),
            ("0.5", MaxFeatures::Fraction(0.5)),
            ("1.0", MaxFeatures::Fraction(1.0)),
        ] {
            let parsed: MaxFeatures = text.parse().unwrap();
            assert_eq!(parsed, want, "{text}");
            assert_eq!(parsed.to_string().parse::<MaxFeatures>().unwrap(), want, "{text} round trip");
        }
        for bad in ["", "0", "0.0", "2.5", "-1", "half", "NaN"] {
            let err = bad.parse::<MaxFeatures>().unwrap_err();
            assert!(err.to_string().contains("max_features"), "{bad}: {err}");
        }
    }
}
