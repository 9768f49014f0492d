//! The one error type of the crate: every refusal names the format, the field and where.

/// Why a model could not be imported or scored.
///
/// Import errors name the source format and the field (with the tree and node, or the line)
/// so a user can find the problem in their file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The file is not well-formed in its format (JSON syntax, a line that is not `key=value`).
    #[error("{format}: malformed file at {at}: {message}")]
    Malformed {
        /// `xgboost` or `lightgbm`.
        format: &'static str,
        /// Byte offset, line or field where parsing stopped.
        at: String,
        /// What was wrong.
        message: String,
    },
    /// A field is missing or holds a value the format does not allow.
    #[error("{format}: field `{field}`: {message}")]
    Field {
        /// `xgboost`, `lightgbm` or `ensemble`.
        format: &'static str,
        /// The field, with its tree and node where it has them (`trees[3].left_children[7]`).
        field: String,
        /// What was wrong.
        message: String,
    },
    /// The file asks for something this crate does not evaluate (an objective, a booster,
    /// linear trees, a multi-target leaf).
    #[error("{format}: unsupported {what}: {value}; supported: {supported}")]
    Unsupported {
        /// `xgboost` or `lightgbm`.
        format: &'static str,
        /// What kind of thing (`objective`, `booster`, ...).
        what: &'static str,
        /// The value found in the file.
        value: String,
        /// What would have been accepted.
        supported: String,
    },
    /// A count over one of the crate's caps (trees, nodes, features, classes).
    #[error("{format}: {what} is {found}, over the limit of {limit}")]
    TooLarge {
        /// `xgboost`, `lightgbm` or `ensemble`.
        format: &'static str,
        /// What was counted.
        what: &'static str,
        /// How many the file has.
        found: usize,
        /// The cap.
        limit: usize,
    },
    /// Scoring was called with buffers of the wrong shape.
    #[error("shape: {0}")]
    Shape(String),
}

impl TreeError {
    pub(crate) fn field(format: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        TreeError::Field { format, field: field.into(), message: message.into() }
    }
}
