//! XGBoost's JSON model format, as `Booster.save_model("model.json")` writes it (the schema
//! is `doc/model.schema` in XGBoost's repository; XGBoost 1.x–3.x files are read).
//!
//! What is read: the `gbtree` booster (not `gblinear` or `dart`); the objectives in
//! [`SUPPORTED_OBJECTIVES`]; `base_score` as a scalar (`"5E-1"`) or, from XGBoost 3, a
//! vector string (`"[5.3E-1]"`, one value per class), mapped to a margin the way the
//! objective does (`logit` for the logistic objectives, `ln` for Poisson); each node's
//! default direction for missing values; categorical splits (`split_type` 1, the category
//! lists of `categories*`); forests (`num_parallel_tree`, whose trees are summed like
//! XGBoost does); `feature_names`; and `best_iteration` (the model keeps the trees up to it,
//! as XGBoost's scikit-learn `predict` does).

use std::collections::HashMap;

use serde::Deserialize;

use crate::ensemble::Ensemble;
use crate::error::TreeError;
use crate::imported::{default_names, ImportedModel, SourceFormat, Task};
use crate::link::Link;
use crate::spec::{
    EnsembleSpec, Missing, Node, Semantics, Split, Tree, MAX_CATEGORY_WORDS, MAX_FEATURES, MAX_GROUPS, MAX_TREES,
};

const FORMAT: &str = "xgboost";

/// The objectives an XGBoost model may have.
pub const SUPPORTED_OBJECTIVES: &[&str] = &[
    "binary:logistic",
    "binary:logitraw",
    "reg:logistic",
    "multi:softprob",
    "multi:softmax",
    "reg:squarederror",
    "reg:linear",
    "reg:absoluteerror",
    "reg:pseudohubererror",
    "count:poisson",
    "reg:gamma",
    "reg:tweedie",
];

/// How [`parse_with`] reads a model.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Options {
    /// Keep only the trees up to `best_iteration` when the file records one (default: true).
    pub use_best_iteration: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { use_best_iteration: true }
    }
}

#[derive(Deserialize)]
struct File {
    learner: Learner,
}

#[derive(Deserialize)]
struct Learner {
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default)]
    feature_names: Vec<String>,
    #[serde(default)]
    feature_types: Vec<String>,
    gradient_booster: Booster,
    learner_model_param: ModelParam,
    objective: Objective,
}

#[derive(Deserialize)]
struct Booster {
    name: String,
    #[serde(default)]
    model: Option<GbTree>,
}

#[derive(Deserialize)]
struct ModelParam {
    base_score: String,
    #[serde(default)]
    num_class: Option<String>,
    num_feature: String,
    #[serde(default)]
    num_target: Option<String>,
}

#[derive(Deserialize)]
struct Objective {
    name: String,
}

#[derive(Deserialize)]
struct GbTree {
    gbtree_model_param: GbTreeParam,
    trees: Vec<XTree>,
    tree_info: Vec<i64>,
    #[serde(default)]
    iteration_indptr: Vec<i64>,
}

#[derive(Deserialize)]
struct GbTreeParam {
    #[serde(default)]
    num_parallel_tree: Option<String>,
}

#[derive(Deserialize)]
struct XTree {
    tree_param: TreeParam,
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    split_indices: Vec<i64>,
    split_conditions: Vec<f64>,
    default_left: Vec<Flag>,
    #[serde(default)]
    split_type: Vec<i64>,
    #[serde(default)]
    categories: Vec<i64>,
    #[serde(default)]
    categories_nodes: Vec<i64>,
    #[serde(default)]
    categories_segments: Vec<i64>,
    #[serde(default)]
    categories_sizes: Vec<i64>,
}

#[derive(Deserialize)]
struct TreeParam {
    num_nodes: String,
    #[serde(default)]
    size_leaf_vector: Option<String>,
}

/// `default_left` is `0`/`1` in current files and `true`/`false` in some older ones.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum Flag {
    Int(i64),
    Bool(bool),
}

impl Flag {
    fn get(self) -> bool {
        match self {
            Flag::Int(i) => i != 0,
            Flag::Bool(b) => b,
        }
    }
}

/// Reads an XGBoost JSON model file.
pub fn read(path: &std::path::Path) -> Result<ImportedModel, TreeError> {
    let bytes = std::fs::read(path).map_err(|e| TreeError::Malformed {
        format: FORMAT,
        at: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse(&bytes)
}

/// Parses an XGBoost JSON model with the default [`Options`].
pub fn parse(bytes: &[u8]) -> Result<ImportedModel, TreeError> {
    parse_with(bytes, Options::default())
}

fn parse_usize(field: &str, value: &str) -> Result<usize, TreeError> {
    value.trim().parse::<usize>().map_err(|_| TreeError::field(FORMAT, field, format!("`{value}` is not a count")))
}

/// Parses an XGBoost JSON model.
pub fn parse_with(bytes: &[u8], options: Options) -> Result<ImportedModel, TreeError> {
    let file: File = serde_json::from_slice(bytes).map_err(|e| TreeError::Malformed {
        format: FORMAT,
        at: format!("line {} column {}", e.line(), e.column()),
        message: e.to_string(),
    })?;
    let learner = file.learner;
    let objective = learner.objective.name;
    if !SUPPORTED_OBJECTIVES.contains(&objective.as_str()) {
        return Err(unsupported("objective", &objective, SUPPORTED_OBJECTIVES.join(", ")));
    }
    if learner.gradient_booster.name != "gbtree" {
        return Err(unsupported("booster", &learner.gradient_booster.name, "gbtree".into()));
    }
    let Some(model) = learner.gradient_booster.model else {
        return Err(TreeError::field(FORMAT, "learner.gradient_booster.model", "missing"));
    };
    let param = learner.learner_model_param;
    let n_features = parse_usize("learner.learner_model_param.num_feature", &param.num_feature)?;
    if n_features > MAX_FEATURES {
        return Err(TreeError::TooLarge {
            format: FORMAT,
            what: "num_feature",
            found: n_features,
            limit: MAX_FEATURES,
        });
    }
    let num_class = match &param.num_class {
        Some(c) => parse_usize("learner.learner_model_param.num_class", c)?,
        None => 0,
    };
    if num_class > MAX_GROUPS {
        return Err(TreeError::TooLarge { format: FORMAT, what: "num_class", found: num_class, limit: MAX_GROUPS });
    }
    if let Some(t) = &param.num_target {
        let targets = parse_usize("learner.learner_model_param.num_target", t)?;
        if targets > 1 {
            return Err(unsupported("num_target", t, "1 (multi-target models are not read)".into()));
        }
    }
    let multiclass = objective.starts_with("multi:");
    if multiclass && num_class < 2 {
        return Err(TreeError::field(FORMAT, "learner.learner_model_param.num_class", "multiclass needs at least 2"));
    }
    let groups = if multiclass { num_class } else { 1 };

    let base = base_scores(&param.base_score, groups)?;
    let base_score = base.iter().map(|b| margin_of(&objective, *b)).collect::<Result<Vec<_>, _>>()?;

    let n_trees = model.trees.len();
    if n_trees > MAX_TREES {
        return Err(TreeError::TooLarge {
            format: FORMAT,
            what: "the number of trees",
            found: n_trees,
            limit: MAX_TREES,
        });
    }
    if model.tree_info.len() != n_trees {
        return Err(TreeError::field(
            FORMAT,
            "gradient_booster.model.tree_info",
            format!("has {} entries for {n_trees} trees", model.tree_info.len()),
        ));
    }
    let keep = kept_trees(&learner.attributes, &model, groups, options)?;

    let mut trees = Vec::with_capacity(keep);
    let mut words = 0usize;
    for (t, (tree, group)) in model.trees.iter().zip(&model.tree_info).take(keep).enumerate() {
        let group = u32::try_from(*group).ok().filter(|g| (*g as usize) < groups).ok_or_else(|| {
            TreeError::field(FORMAT, format!("tree_info[{t}]"), format!("{group} is no output group"))
        })?;
        trees.push(Tree { group, nodes: nodes(t, tree, &mut words)? });
    }

    let link = match objective.as_str() {
        "binary:logistic" | "reg:logistic" => Link::Sigmoid,
        "multi:softprob" | "multi:softmax" => Link::Softmax,
        "count:poisson" | "reg:gamma" | "reg:tweedie" => Link::Exp,
        _ => Link::Identity,
    };
    let ensemble = Ensemble::new(EnsembleSpec {
        semantics: Semantics::XGBoost,
        n_features,
        base_score,
        link,
        average: false,
        trees,
    })?;
    let feature_names = if learner.feature_names.is_empty() {
        default_names(n_features)
    } else if learner.feature_names.len() == n_features {
        learner.feature_names
    } else {
        return Err(TreeError::field(
            FORMAT,
            "learner.feature_names",
            format!("{} names for {n_features} features", learner.feature_names.len()),
        ));
    };
    let categorical_features =
        learner.feature_types.iter().enumerate().filter(|(_, t)| t.as_str() == "c").map(|(i, _)| i).collect();
    let classification = objective.starts_with("binary:") || multiclass;
    Ok(ImportedModel {
        ensemble,
        feature_names,
        categorical_features,
        task: if classification { Task::Classification } else { Task::Regression },
        n_classes: if multiclass {
            num_class
        } else if classification {
            2
        } else {
            0
        },
        predicts_class_index: objective == "multi:softmax",
        objective,
        format: SourceFormat::XGBoostJson,
    })
}

fn unsupported(what: &'static str, value: &str, supported: String) -> TreeError {
    TreeError::Unsupported { format: FORMAT, what, value: value.to_string(), supported }
}

/// `base_score`: `"5E-1"` (XGBoost ≤ 2) or `"[5E-1]"` / `"[a,b,c]"` (XGBoost 3), as `f32`
/// like XGBoost holds it; a single value serves every group.
fn base_scores(text: &str, groups: usize) -> Result<Vec<f32>, TreeError> {
    let field = "learner.learner_model_param.base_score";
    let inner = text.trim().strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text.trim());
    let values = inner
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| TreeError::field(FORMAT, field, format!("`{v}` is not a number")))
        })
        .collect::<Result<Vec<f32>, _>>()?;
    match values.len() {
        1 => Ok(vec![values[0]; groups]),
        n if n == groups => Ok(values),
        n => Err(TreeError::field(FORMAT, field, format!("{n} values for {groups} output groups"))),
    }
}

/// The objective's `ProbToMargin` of a base score, in `f32` as XGBoost computes it
/// (`binary:logitraw` keeps its base score as a margin, as XGBoost 3 does).
fn margin_of(objective: &str, base: f32) -> Result<f64, TreeError> {
    let field = "learner.learner_model_param.base_score";
    let margin = match objective {
        "binary:logistic" | "reg:logistic" => {
            if !(base > 0.0 && base < 1.0) {
                return Err(TreeError::field(FORMAT, field, format!("{base} must be in (0, 1) for {objective}")));
            }
            -(1.0f32 / base - 1.0f32).ln()
        }
        "count:poisson" | "reg:gamma" | "reg:tweedie" => {
            if base <= 0.0 {
                return Err(TreeError::field(FORMAT, field, format!("{base} must be positive for {objective}")));
            }
            base.ln()
        }
        _ => base,
    };
    Ok(margin as f64)
}

/// How many leading trees to keep: all, or those up to `best_iteration`.
fn kept_trees(
    attributes: &HashMap<String, String>,
    model: &GbTree,
    groups: usize,
    options: Options,
) -> Result<usize, TreeError> {
    let all = model.trees.len();
    let Some(best) = attributes.get("best_iteration").filter(|_| options.use_best_iteration) else { return Ok(all) };
    let best = parse_usize("learner.attributes.best_iteration", best)?;
    let end = if model.iteration_indptr.is_empty() {
        let parallel = match &model.gbtree_model_param.num_parallel_tree {
            Some(p) => parse_usize("gbtree_model_param.num_parallel_tree", p)?.max(1),
            None => 1,
        };
        (best + 1).saturating_mul(parallel).saturating_mul(groups)
    } else {
        let e = model.iteration_indptr.get(best + 1).copied().ok_or_else(|| {
            TreeError::field(FORMAT, "gradient_booster.model.iteration_indptr", format!("has no entry {}", best + 1))
        })?;
        usize::try_from(e).map_err(|_| {
            TreeError::field(FORMAT, "gradient_booster.model.iteration_indptr", format!("{e} is negative"))
        })?
    };
    Ok(end.min(all))
}

/// One tree's nodes, checked field by field.
fn nodes(t: usize, tree: &XTree, words: &mut usize) -> Result<Vec<Node>, TreeError> {
    let field = |name: &str| format!("trees[{t}].{name}");
    let n = parse_usize(&field("tree_param.num_nodes"), &tree.tree_param.num_nodes)?;
    if let Some(s) = &tree.tree_param.size_leaf_vector {
        if parse_usize(&field("tree_param.size_leaf_vector"), s)? > 1 {
            return Err(unsupported("size_leaf_vector", s, "0 or 1 (vector leaves are not read)".into()));
        }
    }
    if n == 0 {
        return Err(TreeError::field(FORMAT, field("tree_param.num_nodes"), "a tree needs a node"));
    }
    let lengths = [
        ("left_children", tree.left_children.len()),
        ("right_children", tree.right_children.len()),
        ("split_indices", tree.split_indices.len()),
        ("split_conditions", tree.split_conditions.len()),
        ("default_left", tree.default_left.len()),
    ];
    for (name, len) in lengths {
        if len != n {
            return Err(TreeError::field(FORMAT, field(name), format!("has {len} entries for {n} nodes")));
        }
    }
    if !tree.split_type.is_empty() && tree.split_type.len() != n {
        return Err(TreeError::field(
            FORMAT,
            field("split_type"),
            format!("has {} entries for {n} nodes", tree.split_type.len()),
        ));
    }
    let categories = categories(t, tree, words)?;
    let child = |name: &str, i: usize, c: i64| {
        u32::try_from(c)
            .ok()
            .filter(|c| (*c as usize) < n)
            .ok_or_else(|| TreeError::field(FORMAT, format!("trees[{t}].{name}[{i}]"), format!("{c} is not a node")))
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let left = tree.left_children[i];
        // XGBoost holds thresholds and leaf values as `f32`; the JSON prints them shortest.
        let value = tree.split_conditions[i] as f32 as f64;
        if left == -1 {
            out.push(Node::Leaf { value });
            continue;
        }
        let left = child("left_children", i, left)?;
        let right = child("right_children", i, tree.right_children[i])?;
        let feature = u32::try_from(tree.split_indices[i])
            .map_err(|_| TreeError::field(FORMAT, format!("trees[{t}].split_indices[{i}]"), "not a feature index"))?;
        let default_left = tree.default_left[i].get();
        let split = if tree.split_type.get(i).copied().unwrap_or(0) == 1 {
            let bitset = categories.get(&i).cloned().ok_or_else(|| {
                TreeError::field(FORMAT, format!("trees[{t}].categories_nodes"), format!("no categories for node {i}"))
            })?;
            Split::Categorical { bitset }
        } else {
            Split::Numeric { threshold: value, missing: Missing::Default }
        };
        out.push(Node::Internal { feature, left, right, default_left, split });
    }
    Ok(out)
}

/// Largest category a split may list (XGBoost's own limit: 2^24, the last integer an `f32`
/// holds exactly).
const MAX_CATEGORY: i64 = 1 << 24;

/// The category bitset of each categorical node.
/// `words` counts the bitsets' words over the whole model, so a hostile file cannot make
/// them allocate without bound.
fn categories(t: usize, tree: &XTree, words: &mut usize) -> Result<HashMap<usize, Vec<u32>>, TreeError> {
    let field = |name: &str| format!("trees[{t}].{name}");
    let k = tree.categories_nodes.len();
    if tree.categories_segments.len() != k || tree.categories_sizes.len() != k {
        return Err(TreeError::field(
            FORMAT,
            field("categories_segments"),
            "categories_nodes, categories_segments and categories_sizes differ in length",
        ));
    }
    let mut out = HashMap::with_capacity(k);
    for j in 0..k {
        let node = usize::try_from(tree.categories_nodes[j])
            .map_err(|_| TreeError::field(FORMAT, format!("{}[{j}]", field("categories_nodes")), "negative"))?;
        let (start, size) = (tree.categories_segments[j], tree.categories_sizes[j]);
        let range = usize::try_from(start)
            .ok()
            .zip(usize::try_from(size).ok())
            .and_then(|(s, z)| tree.categories.get(s..s.checked_add(z)?))
            .ok_or_else(|| {
                TreeError::field(
                    FORMAT,
                    format!("{}[{j}]", field("categories_segments")),
                    format!("{start}..+{size} is outside the {} categories", tree.categories.len()),
                )
            })?;
        let mut bitset: Vec<u32> = Vec::new();
        for &c in range {
            if !(0..MAX_CATEGORY).contains(&c) {
                return Err(TreeError::field(FORMAT, field("categories"), format!("{c} is not a category code")));
            }
            let word = (c / 32) as usize;
            if bitset.len() <= word {
                *words += word + 1 - bitset.len();
                if *words > MAX_CATEGORY_WORDS {
                    return Err(TreeError::TooLarge {
                        format: FORMAT,
                        what: "the category bitsets' words",
                        found: *words,
                        limit: MAX_CATEGORY_WORDS,
                    });
                }
                bitset.resize(word + 1, 0);
            }
            bitset[word] |= 1 << (c % 32);
        }
        out.insert(node, bitset);
    }
    Ok(out)
}
