//! The graph's inputs → the columns of a Wharf row. skl2onnx gives a `ColumnTransformer` of
//! mixed columns one input per column (or per group of columns of one type), so the row is
//! every input's columns, in the graph's input order: float inputs are numbers, string
//! inputs are text columns whose levels are the strings the encoders that read them know.
//!
//! A string column is read as a *code*, its index among the column's sorted levels (the
//! same convention as a trained model's categorical feature), so every stage stays an `f32`
//! stage: a string `OneHotEncoder` is the numeric one on codes, a string `LabelEncoder` a
//! lookup of codes. An unknown string (or a missing value) is NaN, which matches no code:
//! zeros from the one-hot encoder, the default from the label encoder, as ONNX Runtime
//! gives an unknown string.
//!
//! The levels of a column are known only once every encoder that reads it has been seen,
//! so an encoder's stage is written with placeholder categories and rewritten by
//! [`TextColumns::finish`].

use std::collections::BTreeSet;

use crate::error::TreeError;

use super::attrs::Node;
use super::proto::{GraphProto, FLOAT, STRING};
use super::spec::{Stage, StageOp, MAX_CATEGORIES};

/// One graph input, as declared.
pub(crate) struct InputTensor {
    pub(crate) name: String,
    /// A string tensor (else float).
    pub(crate) text: bool,
    /// Its width (`None` when the dimension is symbolic).
    pub(crate) width: Option<usize>,
}

/// One column of the imported model's row.
#[derive(Debug, Clone, PartialEq)]
pub struct InputColumn {
    /// The column's name: the graph input's name for a one-column input, else
    /// `input_0`, `input_1`, … (or `f0`, `f1`, … for a model's one float input).
    pub name: String,
    /// A string column's levels, sorted (its codes are their indices); `None` for a number.
    pub levels: Option<Vec<String>>,
    /// For a string column: an unknown string scores as ONNX Runtime scores it (zeros
    /// from a `OneHotEncoder` with `zeros=1`, the default from a `LabelEncoder`). `false`
    /// when an encoder reading it has `zeros=0` (scikit-learn's `handle_unknown="error"`),
    /// on which ONNX Runtime fails: then Wharf refuses the record too.
    pub unknown_allowed: bool,
}

fn unsupported(what: &'static str, value: String, supported: &str) -> TreeError {
    TreeError::Unsupported { format: "onnx", what, value, supported: supported.into() }
}

/// The graph inputs that are not initializers: float or string tensors `[N, F]`.
pub(crate) fn declared(graph: &GraphProto) -> Result<Vec<InputTensor>, TreeError> {
    let constants: std::collections::HashSet<&str> =
        graph.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
    let inputs: Vec<_> = graph.input.iter().filter(|i| !constants.contains(i.name.as_deref().unwrap_or(""))).collect();
    if inputs.is_empty() {
        return Err(unsupported(
            "graph inputs",
            "no input".into(),
            "float or string tensors [N, F] (to_onnx(model, X[:1].astype(np.float32)))",
        ));
    }
    let mut out = Vec::with_capacity(inputs.len());
    for info in inputs {
        let name = info.name.clone().unwrap_or_default();
        let field = |m: String| TreeError::field("onnx", format!("graph.input '{name}'"), m);
        let tensor =
            info.r#type.as_ref().and_then(|t| t.tensor_type.as_ref()).ok_or_else(|| field("is not a tensor".into()))?;
        let text = match tensor.elem_type {
            Some(FLOAT) => false,
            Some(STRING) => true,
            other => {
                return Err(unsupported(
                    "input type",
                    format!("element type {} of '{name}'", other.unwrap_or(0)),
                    "float (1) or string (8); convert with FloatTensorType / StringTensorType",
                ))
            }
        };
        let dims = tensor.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or(&[]);
        if dims.len() != 2 {
            return Err(field(format!("has {} dimensions; a model input is [N, F]", dims.len())));
        }
        let width = match dims[1].dim_value {
            Some(w) if w >= 1 && w as usize <= crate::spec::MAX_FEATURES => Some(w as usize),
            Some(w) => return Err(field(format!("width {w} is not between 1 and {}", crate::spec::MAX_FEATURES))),
            None => None,
        };
        if out.iter().any(|t: &InputTensor| t.name == name) {
            return Err(field("is declared twice".into()));
        }
        out.push(InputTensor { name, text, width });
    }
    if out.len() > 1 || out[0].text {
        if let Some(t) = out.iter().find(|t| t.width.is_none()) {
            return Err(unsupported(
                "graph inputs",
                format!("input '{}' has a symbolic width", t.name),
                "a fixed width for every input of a graph with several inputs or a string input",
            ));
        }
    }
    let total: usize = out.iter().map(|t| t.width.unwrap_or(0)).sum();
    if total > crate::spec::MAX_FEATURES {
        return Err(TreeError::TooLarge {
            format: "onnx",
            what: "the inputs' columns",
            found: total,
            limit: crate::spec::MAX_FEATURES,
        });
    }
    Ok(out)
}

/// What a string encoder compiles to once the levels are known.
enum Encoder {
    OneHot,
    Lookup { values: Vec<f32>, default: f32 },
}

struct Pending {
    stage: usize,
    strings: Vec<String>,
    encoder: Encoder,
    node: String,
}

struct TextColumn {
    input: String,
    strings: BTreeSet<String>,
    unknown_allowed: bool,
}

/// The string columns of the row (the first `width` values) while the graph compiles.
pub(crate) struct TextColumns {
    names: Vec<String>,
    columns: Vec<Option<TextColumn>>,
    pending: Vec<Pending>,
}

impl TextColumns {
    /// The row's columns from the declared inputs (`width` is the row's width).
    pub(crate) fn new(inputs: &[InputTensor], width: usize) -> TextColumns {
        let mut names = Vec::with_capacity(width);
        let mut columns = Vec::with_capacity(width);
        let plain = inputs.len() == 1 && !inputs[0].text;
        for input in inputs {
            let w = input.width.unwrap_or(width);
            for j in 0..w {
                names.push(if plain {
                    format!("f{j}")
                } else if w == 1 {
                    input.name.clone()
                } else {
                    format!("{}_{j}", input.name)
                });
                columns.push(input.text.then(|| TextColumn {
                    input: input.name.clone(),
                    strings: BTreeSet::new(),
                    unknown_allowed: true,
                }));
            }
        }
        TextColumns { names, columns, pending: Vec::new() }
    }

    fn text(&self, slot: u32) -> Option<&TextColumn> {
        self.columns.get(slot as usize).and_then(Option::as_ref)
    }

    /// Refuses a numeric step (a stage, the model operator) on a string column.
    pub(crate) fn numeric(&self, slots: &[u32], node: &Node<'_>) -> Result<(), TreeError> {
        match slots.iter().find_map(|s| self.text(*s)) {
            Some(column) => Err(unsupported(
                "string input",
                format!("'{}' (strings) is read by {}", column.input, node.label()),
                "strings read only by OneHotEncoder (cats_strings) or LabelEncoder (keys_strings)",
            )),
            None => Ok(()),
        }
    }

    /// Refuses a string encoder on a numeric value.
    fn strings_only(&self, slots: &[u32], node: &Node<'_>) -> Result<(), TreeError> {
        if slots.iter().any(|s| self.text(*s).is_none()) {
            return Err(node.error("input", "string categories on a value that is not a string input column"));
        }
        Ok(())
    }

    fn record(&mut self, slots: &[u32], strings: &[String], unknown_allowed: bool) {
        for s in slots {
            if let Some(Some(column)) = self.columns.get_mut(*s as usize) {
                column.strings.extend(strings.iter().cloned());
                column.unknown_allowed &= unknown_allowed;
            }
        }
    }

    /// A `OneHotEncoder` with `cats_strings` on `slots`: the stage to append now (its
    /// categories are rewritten by [`finish`](Self::finish)).
    pub(crate) fn one_hot(
        &mut self,
        slots: &[u32],
        categories: Vec<String>,
        zeros: bool,
        stage: usize,
        node: &Node<'_>,
    ) -> Result<StageOp, TreeError> {
        self.strings_only(slots, node)?;
        check_distinct(&categories, node, "cats_strings")?;
        self.record(slots, &categories, zeros);
        let placeholder = StageOp::OneHot { categories: vec![0; categories.len()] };
        self.pending.push(Pending { stage, strings: categories, encoder: Encoder::OneHot, node: node.label() });
        Ok(placeholder)
    }

    /// A `LabelEncoder` with `keys_strings` on `slots`.
    pub(crate) fn lookup(
        &mut self,
        slots: &[u32],
        keys: Vec<String>,
        values: Vec<f32>,
        default: f32,
        stage: usize,
        node: &Node<'_>,
    ) -> Result<StageOp, TreeError> {
        self.strings_only(slots, node)?;
        check_distinct(&keys, node, "keys_strings")?;
        if keys.len() != values.len() {
            return Err(node.error("keys_strings", format!("{} keys for {} values", keys.len(), values.len())));
        }
        self.record(slots, &keys, true);
        let placeholder = StageOp::Lookup { keys: vec![0.0; keys.len()], values: values.clone(), default };
        self.pending.push(Pending {
            stage,
            strings: keys,
            encoder: Encoder::Lookup { values, default },
            node: node.label(),
        });
        Ok(placeholder)
    }

    /// Sorts each column's levels, rewrites the encoders' stages onto codes, and gives the
    /// row's columns.
    pub(crate) fn finish(self, stages: &mut [Stage]) -> Result<Vec<InputColumn>, TreeError> {
        let levels: Vec<Option<Vec<String>>> =
            self.columns.iter().map(|c| c.as_ref().map(|c| c.strings.iter().cloned().collect())).collect();
        for pending in self.pending {
            let stage = &mut stages[pending.stage];
            // Codes are per column: the columns an encoder reads must share their levels.
            let first =
                stage.input.first().and_then(|s| levels.get(*s as usize)).cloned().flatten().unwrap_or_default();
            if stage.input.iter().any(|s| levels.get(*s as usize).and_then(Option::as_ref) != Some(&first)) {
                return Err(unsupported(
                    "string input",
                    format!("{} reads string columns whose other encoders know other strings", pending.node),
                    "each string column read by encoders of the same categories",
                ));
            }
            let codes: Vec<usize> =
                pending.strings.iter().map(|s| first.binary_search(s).unwrap_or(usize::MAX)).collect();
            stage.op = match pending.encoder {
                Encoder::OneHot => StageOp::OneHot { categories: codes.iter().map(|c| *c as i64).collect() },
                Encoder::Lookup { values, default } => {
                    StageOp::Lookup { keys: codes.iter().map(|c| *c as f32).collect(), values, default }
                }
            };
        }
        Ok(self
            .names
            .into_iter()
            .zip(self.columns)
            .zip(levels)
            .map(|((name, column), levels)| InputColumn {
                name,
                unknown_allowed: column.as_ref().is_none_or(|c| c.unknown_allowed),
                levels,
            })
            .collect())
    }
}

fn check_distinct(strings: &[String], node: &Node<'_>, attribute: &str) -> Result<(), TreeError> {
    if strings.is_empty() || strings.len() > MAX_CATEGORIES {
        return Err(node.error(attribute, format!("{} strings is not between 1 and {MAX_CATEGORIES}", strings.len())));
    }
    let set: BTreeSet<&String> = strings.iter().collect();
    if set.len() != strings.len() {
        return Err(node.error(attribute, "a string appears twice"));
    }
    Ok(())
}
