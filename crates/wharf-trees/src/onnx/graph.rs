//! An ONNX graph → a [`PipelineSpec`]: from its inputs (float and string columns, see
//! `inputs.rs`), through stages and column
//! selections (each tensor of the row is resolved, at import, to the list of row values it
//! holds), to one model operator, then one chain of post-transforms of the scores (the
//! shape skl2onnx gives a scikit-learn estimator, `Pipeline` or `ColumnTransformer`). Every operator is checked against
//! the supported list before anything is compiled, so an unsupported one is refused at
//! import with its name.

use std::collections::HashMap;

use crate::error::TreeError;

use super::attrs::Node;
use super::inputs::{InputColumn, TextColumns};
use super::proto::{ModelProto, TensorProto, FLOAT, INT32, INT64};
use super::spec::{Head, Norm, PipelineSpec, Post, Stage, StageOp, Transform, MAX_SLOTS};

/// The model operators; a graph has exactly one.
const MODEL_OPS: &[&str] =
    &["LinearClassifier", "LinearRegressor", "TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble"];

/// Most nodes in a graph (a scikit-learn pipeline has a handful).
pub const MAX_GRAPH_NODES: usize = 10_000;

/// The operators Wharf compiles, as `domain:op` (`""` is the standard domain).
pub const SUPPORTED: &[(&str, &str)] = &[
    ("ai.onnx.ml", "TreeEnsembleClassifier"),
    ("ai.onnx.ml", "TreeEnsembleRegressor"),
    ("ai.onnx.ml", "TreeEnsemble"),
    ("ai.onnx.ml", "LinearClassifier"),
    ("ai.onnx.ml", "LinearRegressor"),
    ("ai.onnx.ml", "Scaler"),
    ("ai.onnx.ml", "Imputer"),
    ("ai.onnx.ml", "Normalizer"),
    ("ai.onnx.ml", "OneHotEncoder"),
    ("ai.onnx.ml", "LabelEncoder"),
    ("ai.onnx.ml", "ArrayFeatureExtractor"),
    ("ai.onnx.ml", "ZipMap"),
    ("", "Cast"),
    ("", "Add"),
    ("", "Sub"),
    ("", "Mul"),
    ("", "Clip"),
    ("", "Identity"),
    ("", "ArgMax"),
    ("", "Softmax"),
    ("", "Concat"),
    ("", "Gather"),
    ("", "Reshape"),
];

fn supported_list() -> String {
    SUPPORTED.iter().map(|(_, op)| *op).collect::<Vec<_>>().join(", ")
}

/// What a tensor of the graph is to the compiler.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The input row, maybe transformed.
    Features,
    /// The model's scores or probabilities, maybe transformed.
    Scores,
    /// A predicted label, or a map of the scores (ZipMap): ends a branch.
    Terminal,
}

/// The graph's facts for a signature.
pub(crate) struct Compiled {
    pub(crate) spec: PipelineSpec,
    /// The input's width as the file declares it (`None` when the dimension is symbolic).
    pub(crate) declared_width: Option<usize>,
    /// The model operator (`TreeEnsembleClassifier`, …).
    pub(crate) model_op: String,
    /// `producer_name producer_version`.
    pub(crate) producer: String,
    /// The row's columns: names, and the levels of string columns.
    pub(crate) columns: Vec<InputColumn>,
}

fn unsupported(what: &'static str, value: String, supported: String) -> TreeError {
    TreeError::Unsupported { format: "onnx", what, value, supported }
}

pub(crate) fn compile<'a>(model: &'a ModelProto) -> Result<Compiled, TreeError> {
    for opset in &model.opset_import {
        let domain = opset.domain.as_deref().unwrap_or("");
        if !matches!(domain, "" | "ai.onnx" | "ai.onnx.ml") {
            return Err(unsupported("operator set", domain.to_string(), "ai.onnx, ai.onnx.ml".into()));
        }
    }
    let graph = model.graph.as_ref().ok_or_else(|| TreeError::field("onnx", "graph", "the model has no graph"))?;
    if graph.node.len() > MAX_GRAPH_NODES {
        return Err(TreeError::TooLarge {
            format: "onnx",
            what: "the number of graph nodes",
            found: graph.node.len(),
            limit: MAX_GRAPH_NODES,
        });
    }
    // Refuse an unsupported operator before reading anything else.
    for (index, proto) in graph.node.iter().enumerate() {
        let node = Node { proto, index };
        let domain = match proto.domain.as_deref().unwrap_or("") {
            "ai.onnx" => "",
            d => d,
        };
        if !SUPPORTED.iter().any(|(d, op)| *d == domain && *op == node.op()) {
            let shown = if domain.is_empty() { node.op().to_string() } else { format!("{domain}.{}", node.op()) };
            return Err(unsupported("operator", format!("{shown} ({})", node.label()), supported_list()));
        }
    }
    let declared = super::inputs::declared(graph)?;
    let declared_width = declared.iter().map(|t| t.width).sum::<Option<usize>>();
    let input = declared.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ");
    let width = match declared_width {
        Some(w) => w,
        // A symbolic width: the model operator's.
        None => {
            let (index, proto) = graph
                .node
                .iter()
                .enumerate()
                .find(|(_, n)| MODEL_OPS.contains(&n.op_type.as_deref().unwrap_or("")))
                .ok_or_else(|| TreeError::field("onnx", "graph", "no model operator"))?;
            infer_width(&Node { proto, index })?
        }
    };
    let constants: HashMap<&'a str, &'a TensorProto> =
        graph.initializer.iter().filter_map(|t| t.name.as_deref().map(|n| (n, t))).collect();
    // Every tensor the compiler knows: its role, and for the input row's tensors, which of
    // the row's values (input columns, then stage outputs) it holds.
    let mut tensors: HashMap<&'a str, (Role, Vec<u32>)> = HashMap::new();
    let mut first_column = 0u32;
    for tensor in &declared {
        let w = tensor.width.unwrap_or(width) as u32;
        let name: &'a str =
            graph.input.iter().filter_map(|i| i.name.as_deref()).find(|n| *n == tensor.name).unwrap_or("");
        tensors.insert(name, (Role::Features, (first_column..first_column + w).collect()));
        first_column += w;
    }
    let mut text = TextColumns::new(&declared, width);
    let mut slots = width;
    // A Scores tensor may be transformed by one node only: two post-processing branches
    // would leave Wharf to pick one.
    let mut consumed: HashMap<&'a str, usize> = HashMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut post = Vec::new();
    let mut head: Option<(Head, String, Vec<String>, Vec<u32>)> = None;

    for (index, proto) in graph.node.iter().enumerate() {
        let node = Node { proto, index };
        let op = node.op();
        let inputs: Vec<&'a str> = proto.input.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
        let first = *inputs.first().ok_or_else(|| node.error("input", "the node reads no tensor"))?;
        let (role, values) = tensors.get(first).cloned().ok_or_else(|| {
            node.error(
                "input",
                format!("reads '{first}', which is neither the graph's input nor made by a node before it"),
            )
        })?;
        if role == Role::Scores && !matches!(op, "ZipMap" | "ArgMax") {
            let seen = consumed.entry(first).or_insert(0);
            *seen += 1;
            if *seen > 1 {
                return Err(unsupported(
                    "graph shape",
                    format!("the scores '{first}' are transformed by more than one node (at {})", node.label()),
                    "one chain of post-processing after the model operator".into(),
                ));
            }
        }
        // The index the next stage gets (a string encoder's, rewritten once levels are known).
        let next_stage = stages.len();
        let out0: Option<&'a str> = proto.output.first().map(String::as_str).filter(|s| !s.is_empty());
        let out1: Option<&'a str> = proto.output.get(1).map(String::as_str).filter(|s| !s.is_empty());
        // A stage on the row's values: appended, and its outputs are the new tensor's.
        let mut stage = |input: Vec<u32>, op: StageOp| -> Result<Vec<u32>, TreeError> {
            let stage = Stage { input, op };
            let n = stage.n_outputs();
            if slots + n > MAX_SLOTS {
                return Err(node.error("input", format!("the stages compute over {MAX_SLOTS} values per row")));
            }
            let outputs = (slots as u32..(slots + n) as u32).collect();
            slots += n;
            stages.push(stage);
            Ok(outputs)
        };
        // Strings only move (selections, joins) until a string encoder reads them.
        let moves = matches!(op, "Concat" | "Identity" | "ArrayFeatureExtractor" | "Gather" | "Reshape");
        if role == Role::Features && !moves && !matches!(op, "OneHotEncoder" | "LabelEncoder") {
            text.numeric(&values, &node)?;
        }
        let result: Option<(Role, Vec<u32>)> = match (role, op) {
            (Role::Terminal, _) | (_, "ArgMax" | "ZipMap") => Some((Role::Terminal, Vec::new())),
            (Role::Features, "Concat") => {
                let axis = node.int("axis").unwrap_or(1);
                if axis != 1 && axis != -1 {
                    return Err(node.error("axis", format!("{axis}; only columns (1 or -1) are joined")));
                }
                let mut joined = Vec::new();
                for name in &inputs {
                    match tensors.get(name) {
                        Some((Role::Features, v)) => joined.extend_from_slice(v),
                        _ => return Err(node.error("input", format!("'{name}' is not a row tensor"))),
                    }
                }
                Some((Role::Features, joined))
            }
            (_, "Identity") => Some((role, values)),
            (_, "Concat") if inputs.len() == 1 => Some((role, values)),
            (Role::Features, "ArrayFeatureExtractor" | "Gather") => {
                if op == "Gather" && !matches!(node.int("axis").unwrap_or(0), 1 | -1) {
                    return Err(node.error("axis", "only columns (axis 1) are gathered"));
                }
                let name = inputs.get(1).copied().unwrap_or("");
                let indices = constants
                    .get(name)
                    .ok_or_else(|| node.error("input", format!("the indices '{name}' are not a constant")))?;
                let indices = super::attrs::tensor_i64(indices).map_err(|m| node.error(name, m))?;
                let picked = indices
                    .iter()
                    .map(|i| {
                        let j = if *i < 0 { *i + values.len() as i64 } else { *i };
                        usize::try_from(j).ok().and_then(|j| values.get(j).copied()).ok_or_else(|| {
                            node.error(name, format!("column {i} of a tensor of {} columns", values.len()))
                        })
                    })
                    .collect::<Result<Vec<u32>, _>>()?;
                Some((Role::Features, picked))
            }
            (Role::Features, "Reshape") => {
                let name = inputs.get(1).copied().unwrap_or("");
                let shape = constants
                    .get(name)
                    .ok_or_else(|| node.error("input", format!("the shape '{name}' is not a constant")))?;
                let shape = super::attrs::tensor_i64(shape).map_err(|m| node.error(name, m))?;
                let n = values.len() as i64;
                if !matches!(shape.as_slice(), [-1 | 0, c] if *c == n)
                    && !matches!(shape.as_slice(), [-1, c, 1] if *c == n)
                {
                    return Err(node.error(name, format!("reshape to {shape:?}; only [-1, {n}] keeps a row a row")));
                }
                Some((Role::Features, values))
            }
            (_, "Cast") => {
                let to = node.int("to").unwrap_or(0) as i32;
                match (role, to) {
                    (_, FLOAT) => Some((role, values)),
                    (Role::Features, INT64 | INT32) => Some((Role::Features, stage(values, StageOp::Truncate)?)),
                    _ => {
                        return Err(node.error(
                            "to",
                            format!(
                                "casts the {} to type {to}; only float (and int64 before an encoder) is compiled",
                                name(role)
                            ),
                        ))
                    }
                }
            }
            (Role::Features, "Scaler") => {
                let op =
                    StageOp::Scaler { offset: node.floats("offset")?.to_vec(), scale: node.floats("scale")?.to_vec() };
                Some((Role::Features, stage(values, op)?))
            }
            // A row and a constant: scikit-learn's MinMaxScaler is `Mul` then `Add`. Each is a
            // `Scaler` stage that computes the same f32 operation: `(x - 0) * c` is `x * c`,
            // and `(x - (-c)) * 1` is `x + c`, to the bit.
            (Role::Features, "Add" | "Sub" | "Mul") => {
                let name = inputs.get(1).copied().unwrap_or("");
                let constant = constants.get(name).ok_or_else(|| {
                    node.error("input", format!("'{name}' is not a constant (only a row and a constant are compiled)"))
                })?;
                let c = super::attrs::tensor_f32(constant).map_err(|m| node.error(name, m))?;
                let op = match op {
                    "Mul" => StageOp::Scaler { offset: vec![0.0], scale: c },
                    "Add" => StageOp::Scaler { offset: c.iter().map(|v| -v).collect(), scale: vec![1.0] },
                    _ => StageOp::Scaler { offset: c, scale: vec![1.0] },
                };
                Some((Role::Features, stage(values, op)?))
            }
            // scikit-learn's MinMaxScaler(clip=True). The bounds are inputs since opset 11,
            // attributes before; absent, they are f32's lowest and highest, as in ONNX Runtime.
            (Role::Features, "Clip") => {
                let bound = |position: usize, attribute: &str, absent: f32| -> Result<f32, TreeError> {
                    let Some(name) = proto.input.get(position).map(String::as_str).filter(|s| !s.is_empty()) else {
                        return Ok(node.float(attribute).unwrap_or(absent));
                    };
                    let constant = constants
                        .get(name)
                        .ok_or_else(|| node.error("input", format!("the bound '{name}' is not a constant")))?;
                    match super::attrs::tensor_f32(constant).map_err(|m| node.error(name, m))?.as_slice() {
                        [value] => Ok(*value),
                        other => Err(node.error(name, format!("{} values; a bound is one", other.len()))),
                    }
                };
                let op = StageOp::Clip { min: bound(1, "min", f32::MIN)?, max: bound(2, "max", f32::MAX)? };
                Some((Role::Features, stage(values, op)?))
            }
            (Role::Features, "Imputer") => {
                let imputed = node.floats("imputed_value_floats")?.to_vec();
                if imputed.is_empty() {
                    return Err(node.error("imputed_value_floats", "missing (integer imputers are not compiled)"));
                }
                let op = StageOp::Imputer {
                    values: imputed,
                    replaced: node.float("replaced_value_float").unwrap_or(f32::NAN),
                };
                Some((Role::Features, stage(values, op)?))
            }
            (Role::Features, "Normalizer") => Some((Role::Features, stage(values, StageOp::Normalizer(norm(&node)?))?)),
            (Role::Features, "LabelEncoder") if !node.strings("keys_strings")?.is_empty() => {
                let keys = node.strings("keys_strings")?;
                let (table, default) = if !node.floats("values_floats")?.is_empty() {
                    (node.floats("values_floats")?.to_vec(), node.float("default_float").unwrap_or(-0.0))
                } else if !node.ints("values_int64s")?.is_empty() {
                    let table = node.ints("values_int64s")?.iter().map(|v| *v as f32).collect();
                    (table, node.int("default_int64").unwrap_or(-1) as f32)
                } else {
                    return Err(unsupported(
                        "LabelEncoder values",
                        format!("string or tensor values ({})", node.label()),
                        "keys_strings to values_int64s or values_floats".into(),
                    ));
                };
                let op = text.lookup(&values, keys, table, default, next_stage, &node)?;
                Some((Role::Features, stage(values, op)?))
            }
            (Role::Features, "LabelEncoder") => {
                text.numeric(&values, &node)?;
                let mut keys = node.floats("keys_floats")?.to_vec();
                if keys.is_empty() {
                    keys = node.ints("keys_int64s")?.iter().map(|k| *k as f32).collect();
                }
                let mut table = node.floats("values_floats")?.to_vec();
                let mut default = node.float("default_float").unwrap_or(-0.0);
                if table.is_empty() {
                    table = node.ints("values_int64s")?.iter().map(|v| *v as f32).collect();
                    default = node.int("default_int64").unwrap_or(-1) as f32;
                }
                if keys.is_empty() || table.is_empty() {
                    return Err(unsupported(
                        "LabelEncoder keys",
                        format!("string or tensor keys ({})", node.label()),
                        "keys_floats or keys_int64s to values_floats or values_int64s".into(),
                    ));
                }
                Some((Role::Features, stage(values, StageOp::Lookup { keys, values: table, default })?))
            }
            (Role::Features, "OneHotEncoder") => {
                let strings = node.strings("cats_strings")?;
                let op = if !strings.is_empty() {
                    // `zeros=0`: ONNX Runtime fails on an unknown string; so does Wharf.
                    let zeros = node.int("zeros").unwrap_or(1) != 0;
                    text.one_hot(&values, strings, zeros, next_stage, &node)?
                } else {
                    text.numeric(&values, &node)?;
                    let categories = node.ints("cats_int64s")?.to_vec();
                    if categories.is_empty() {
                        return Err(node.error("cats_int64s", "no categories (neither cats_int64s nor cats_strings)"));
                    }
                    StageOp::OneHot { categories }
                };
                Some((Role::Features, stage(values, op)?))
            }
            (Role::Scores, "Normalizer") => {
                post.push(Post::Normalizer(norm(&node)?));
                Some((Role::Scores, Vec::new()))
            }
            (Role::Scores, "Softmax") => {
                let axis = node.int("axis").unwrap_or(-1);
                if axis != -1 && axis != 1 {
                    return Err(node.error("axis", format!("{axis}; only the class axis (1 or -1) is compiled")));
                }
                post.push(Post::Softmax);
                Some((Role::Scores, Vec::new()))
            }
            (Role::Features, model_op) if MODEL_OPS.contains(&model_op) => {
                if head.is_some() {
                    return Err(unsupported(
                        "graph shape",
                        format!("a second model operator at {}", node.label()),
                        "one model operator".into(),
                    ));
                }
                let w = values.len();
                if model_op == "TreeEnsemble" {
                    // Opset 5: no class labels; several targets are a classifier's scores.
                    let targets = node.int("n_targets").unwrap_or(1);
                    if !(1..=crate::spec::MAX_GROUPS as i64).contains(&targets) {
                        return Err(node.error(
                            "n_targets",
                            format!("{targets} is not between 1 and {}", crate::spec::MAX_GROUPS),
                        ));
                    }
                    let targets = targets as usize;
                    let classes: Vec<String> =
                        if targets > 1 { (0..targets).map(|c| c.to_string()).collect() } else { Vec::new() };
                    let transform = match node.int("post_transform").unwrap_or(0) {
                        0 => Transform::None,
                        1 => Transform::Softmax,
                        2 => Transform::Logistic,
                        3 => Transform::SoftmaxZero,
                        other => {
                            return Err(unsupported(
                                "post_transform",
                                format!("{other} ({})", node.label()),
                                "0 (NONE), 1 (SOFTMAX), 2 (LOGISTIC), 3 (SOFTMAX_ZERO)".into(),
                            ))
                        }
                    };
                    let compiled = super::trees::compile_v5(&node, w, targets, transform)?;
                    head = Some((compiled, model_op.to_string(), classes, values));
                    tensors.insert(out0.unwrap_or(""), (Role::Scores, Vec::new()));
                    continue;
                }
                let classifier = model_op.ends_with("Classifier");
                let classes = if classifier { classes(&node)? } else { Vec::new() };
                let transform = transform(&node)?;
                let compiled = if model_op.starts_with("Linear") {
                    linear(&node, classifier, classes.len(), w, transform)?
                } else {
                    super::trees::compile(&node, classifier, classes.len(), w, transform)?
                };
                head = Some((compiled, model_op.to_string(), classes, values));
                if classifier {
                    if let Some(label) = out0 {
                        tensors.insert(label, (Role::Terminal, Vec::new()));
                    }
                    out1.map(|_| (Role::Scores, Vec::new()))
                } else {
                    Some((Role::Scores, Vec::new()))
                }
            }
            (role, op) => {
                return Err(unsupported(
                    "operator placement",
                    format!("{} on the {}", node.label(), name(role)),
                    format!("{op} only where skl2onnx puts it"),
                ))
            }
        };
        let target = if MODEL_OPS.contains(&op) && op.ends_with("Classifier") { out1 } else { out0 };
        if let (Some(name), Some(value)) = (target, result) {
            tensors.insert(name, value);
        }
    }
    let Some((head, model_op, classes, features)) = head else {
        return Err(TreeError::field(
            "onnx",
            "graph",
            "no model operator (LinearClassifier, TreeEnsembleRegressor, …)",
        ));
    };
    let columns = text.finish(&mut stages)?;
    let spec = PipelineSpec { input, width, stages, features, head, post, classes };
    spec.validate()?;
    let producer = format!(
        "{} {}",
        model.producer_name.as_deref().unwrap_or("unknown"),
        model.producer_version.as_deref().unwrap_or("")
    )
    .trim()
    .to_string();
    Ok(Compiled { spec, declared_width, model_op, producer, columns })
}

fn name(role: Role) -> &'static str {
    match role {
        Role::Features => "input row",
        Role::Scores => "model's scores",
        Role::Terminal => "label",
    }
}

fn norm(node: &Node<'_>) -> Result<Norm, TreeError> {
    match node.string("norm")?.as_deref().unwrap_or("MAX") {
        "MAX" => Ok(Norm::Max),
        "L1" => Ok(Norm::L1),
        "L2" => Ok(Norm::L2),
        other => Err(node.error("norm", format!("'{other}' is not MAX, L1 or L2"))),
    }
}

fn transform(node: &Node<'_>) -> Result<Transform, TreeError> {
    match node.string("post_transform")?.as_deref().unwrap_or("NONE") {
        "NONE" => Ok(Transform::None),
        "LOGISTIC" => Ok(Transform::Logistic),
        "SOFTMAX" => Ok(Transform::Softmax),
        "SOFTMAX_ZERO" => Ok(Transform::SoftmaxZero),
        other => Err(unsupported(
            "post_transform",
            format!("{other} ({})", node.label()),
            "NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO".into(),
        )),
    }
}

/// Class labels from `classlabels_ints` / `classlabels_int64s` / `classlabels_strings`.
fn classes(node: &Node<'_>) -> Result<Vec<String>, TreeError> {
    let mut labels: Vec<String> = node.ints("classlabels_ints")?.iter().map(|c| c.to_string()).collect();
    if labels.is_empty() {
        labels = node.ints("classlabels_int64s")?.iter().map(|c| c.to_string()).collect();
    }
    if labels.is_empty() {
        labels = node.strings("classlabels_strings")?;
    }
    if labels.len() < 2 {
        return Err(
            node.error("classlabels_ints", format!("{} class labels; a classifier has at least 2", labels.len()))
        );
    }
    if labels.len() > crate::spec::MAX_GROUPS {
        return Err(
            node.error("classlabels_ints", format!("{} classes, over {}", labels.len(), crate::spec::MAX_GROUPS))
        );
    }
    Ok(labels)
}

/// The width a model operator reads when the input's is symbolic.
fn infer_width(node: &Node<'_>) -> Result<usize, TreeError> {
    if node.op().starts_with("Linear") {
        let rows = if node.op() == "LinearClassifier" {
            classes(node)?.len()
        } else {
            node.int("targets").unwrap_or(1).max(1) as usize
        };
        let c = node.floats("coefficients")?.len();
        if c == 0 || !c.is_multiple_of(rows) {
            return Err(node.error("coefficients", format!("{c} values are not whole rows of {rows} outputs")));
        }
        return Ok(c / rows);
    }
    let max = node.ints("nodes_featureids")?.iter().copied().max().unwrap_or(0);
    Ok((max.max(0) as usize) + 1)
}

fn linear(
    node: &Node<'_>,
    classifier: bool,
    n_classes: usize,
    width: usize,
    transform: Transform,
) -> Result<Head, TreeError> {
    let coefficients = node.floats("coefficients")?.to_vec();
    let mut intercepts = node.floats("intercepts")?.to_vec();
    let outputs = if classifier { n_classes } else { node.int("targets").unwrap_or(1).max(1) as usize };
    if !classifier && outputs != 1 {
        return Err(unsupported("LinearRegressor targets", format!("{outputs} ({})", node.label()), "1".into()));
    }
    if coefficients.len() != outputs * width {
        return Err(node.error(
            "coefficients",
            format!("{} values; {outputs} outputs × {width} features need {}", coefficients.len(), outputs * width),
        ));
    }
    if intercepts.is_empty() {
        intercepts = vec![0.0; outputs];
    }
    if intercepts.len() != outputs {
        return Err(node.error("intercepts", format!("{} values for {outputs} outputs", intercepts.len())));
    }
    Ok(Head::Linear { coefficients, intercepts, transform })
}
