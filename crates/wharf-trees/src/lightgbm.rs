//! LightGBM's text model format, as `Booster.save_model("model.txt")` writes it.
//!
//! What is read: the header (`num_class`, `num_tree_per_iteration`, `max_feature_idx`,
//! `objective` with its parameters, `feature_names`, `average_output`); every `Tree=` block
//! with its numeric and categorical splits: `decision_type` bit 0 (categorical), bit 1
//! (`default_left`) and bits 2–3 (missing type `None`, `Zero` or `NaN`); categorical bitsets
//! (`cat_boundaries`, `cat_threshold`); leaf values. Linear trees (`is_linear=1`) and the
//! `regression sqrt` transform are refused. Parameters and feature importances after the
//! trees are ignored.

use crate::ensemble::Ensemble;
use crate::error::TreeError;
use crate::imported::{ImportedModel, SourceFormat, Task};
use crate::link::Link;
use crate::spec::{
    EnsembleSpec, Missing, Node, Semantics, Split, Tree, MAX_CATEGORY_WORDS, MAX_FEATURES, MAX_GROUPS,
    MAX_NODES_PER_TREE, MAX_TREES,
};

const FORMAT: &str = "lightgbm";

/// The objectives a LightGBM model may have (with their aliases as LightGBM writes them).
pub const SUPPORTED_OBJECTIVES: &[&str] = &[
    "binary",
    "multiclass",
    "multiclassova",
    "cross_entropy",
    "regression",
    "regression_l1",
    "huber",
    "fair",
    "quantile",
    "mape",
    "poisson",
    "gamma",
    "tweedie",
];

/// Reads a LightGBM text model file.
pub fn read(path: &std::path::Path) -> Result<ImportedModel, TreeError> {
    let bytes = std::fs::read(path).map_err(|e| TreeError::Malformed {
        format: FORMAT,
        at: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse(&bytes)
}

fn malformed(line: usize, message: impl Into<String>) -> TreeError {
    TreeError::Malformed { format: FORMAT, at: format!("line {line}"), message: message.into() }
}

fn field(name: impl Into<String>, message: impl Into<String>) -> TreeError {
    TreeError::field(FORMAT, name, message)
}

/// The `key=value` lines of one section, with the line each came from.
#[derive(Default)]
struct Section<'a> {
    line: usize,
    entries: Vec<(&'a str, &'a str, usize)>,
    flags: Vec<&'a str>,
}

impl<'a> Section<'a> {
    fn get(&self, key: &str) -> Option<(&'a str, usize)> {
        self.entries.iter().find(|(k, _, _)| *k == key).map(|(_, v, l)| (*v, *l))
    }

    fn require(&self, key: &str, what: &str) -> Result<(&'a str, usize), TreeError> {
        self.get(key).ok_or_else(|| field(format!("{what}.{key}"), format!("missing (section at line {})", self.line)))
    }
}

fn number<T: std::str::FromStr>(name: &str, line: usize, text: &str) -> Result<T, TreeError> {
    text.trim().parse::<T>().map_err(|_| field(name, format!("line {line}: `{}` is not a valid number", text.trim())))
}

/// A whitespace-separated array that must have `len` items.
fn array<T: std::str::FromStr>(name: &str, line: usize, text: &str, len: usize) -> Result<Vec<T>, TreeError> {
    let mut out = Vec::with_capacity(len.min(MAX_NODES_PER_TREE));
    for (i, item) in text.split_whitespace().enumerate() {
        if i >= len {
            return Err(field(name, format!("line {line}: more than the {len} values expected")));
        }
        out.push(number(&format!("{name}[{i}]"), line, item)?);
    }
    if out.len() != len {
        return Err(field(name, format!("line {line}: {} values, {len} expected", out.len())));
    }
    Ok(out)
}

/// Splits the file into the header and the `Tree=` sections; stops at `end of trees`.
fn sections(text: &str) -> Result<(Section<'_>, Vec<Section<'_>>), TreeError> {
    let mut header = Section { line: 1, ..Section::default() };
    let mut trees: Vec<Section> = Vec::new();
    let mut ended = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() {
            continue;
        }
        if l == "end of trees" {
            ended = true;
            break;
        }
        if let Some(index) = l.strip_prefix("Tree=") {
            let expected = trees.len();
            if number::<usize>("Tree", line, index)? != expected {
                return Err(malformed(line, format!("`{l}` where Tree={expected} was expected")));
            }
            if trees.len() >= MAX_TREES {
                return Err(TreeError::TooLarge {
                    format: FORMAT,
                    what: "the number of trees",
                    found: trees.len() + 1,
                    limit: MAX_TREES,
                });
            }
            trees.push(Section { line, ..Section::default() });
            continue;
        }
        let section = trees.last_mut().unwrap_or(&mut header);
        match l.split_once('=') {
            Some((k, v)) => section.entries.push((k.trim(), v, line)),
            None => section.flags.push(l),
        }
    }
    if !ended {
        return Err(malformed(text.lines().count(), "no `end of trees` line: the file is truncated"));
    }
    if header.flags.first() != Some(&"tree") {
        return Err(malformed(1, "a LightGBM model starts with the line `tree`"));
    }
    Ok((header, trees))
}

/// Parses a LightGBM text model.
pub fn parse(bytes: &[u8]) -> Result<ImportedModel, TreeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| TreeError::Malformed {
        format: FORMAT,
        at: format!("byte {}", e.valid_up_to()),
        message: "not UTF-8 text".into(),
    })?;
    let (header, sections) = sections(text)?;

    let (num_class, l) = header.require("num_class", "header")?;
    let num_class: usize = number("num_class", l, num_class)?;
    let per_iteration: usize = match header.get("num_tree_per_iteration") {
        Some((v, l)) => number("num_tree_per_iteration", l, v)?,
        None => num_class,
    };
    if per_iteration == 0 || per_iteration > MAX_GROUPS {
        return Err(field("num_tree_per_iteration", format!("{per_iteration} is not between 1 and {MAX_GROUPS}")));
    }
    let (max_feature, l) = header.require("max_feature_idx", "header")?;
    let max_feature: usize = number("max_feature_idx", l, max_feature)?;
    if max_feature >= MAX_FEATURES {
        return Err(TreeError::TooLarge {
            format: FORMAT,
            what: "max_feature_idx",
            found: max_feature,
            limit: MAX_FEATURES,
        });
    }
    let n_features = max_feature + 1;
    let (objective_line, _) = header.require("objective", "header")?;
    let mut words = objective_line.split_whitespace();
    let objective = words.next().unwrap_or_default().to_string();
    let params: Vec<(&str, &str)> = words.filter_map(|w| w.split_once(':')).collect();
    let flags: Vec<&str> = objective_line.split_whitespace().skip(1).filter(|w| !w.contains(':')).collect();
    if !SUPPORTED_OBJECTIVES.contains(&objective.as_str()) {
        return Err(TreeError::Unsupported {
            format: FORMAT,
            what: "objective",
            value: objective,
            supported: SUPPORTED_OBJECTIVES.join(", "),
        });
    }
    if flags.contains(&"sqrt") {
        return Err(TreeError::Unsupported {
            format: FORMAT,
            what: "objective",
            value: objective_line.trim().to_string(),
            supported: "regression without `sqrt`".into(),
        });
    }
    let sigmoid = match params.iter().find(|(k, _)| *k == "sigmoid") {
        Some((_, v)) => number::<f64>("objective.sigmoid", 0, v)?,
        None => 1.0,
    };
    let multiclass = objective == "multiclass" || objective == "multiclassova";
    if multiclass && (num_class < 2 || per_iteration != num_class) {
        return Err(field("num_class", format!("{num_class} classes with {per_iteration} trees per iteration")));
    }
    if !multiclass && per_iteration != 1 {
        return Err(field("num_tree_per_iteration", format!("{per_iteration} for the single-output {objective}")));
    }
    let average = header.flags.contains(&"average_output");

    let feature_names = match header.get("feature_names") {
        Some((names, l)) => {
            let names: Vec<String> = names.split_whitespace().map(str::to_string).collect();
            if names.len() != n_features {
                return Err(field(
                    "feature_names",
                    format!("line {l}: {} names for {n_features} features", names.len()),
                ));
            }
            names
        }
        None => (0..n_features).map(|i| format!("Column_{i}")).collect(),
    };

    // `feature_infos` lists a categorical feature's categories (`1:0:3`) where a numeric
    // one has its range (`[-1.5:2]`) and an unused one `none`.
    let mut categorical = vec![false; n_features];
    if let Some((infos, _)) = header.get("feature_infos") {
        for (c, info) in categorical.iter_mut().zip(infos.split_whitespace()) {
            *c = !info.starts_with('[') && info != "none";
        }
    }
    let mut trees = Vec::with_capacity(sections.len());
    let mut cat_words = 0usize;
    for (t, section) in sections.iter().enumerate() {
        let tree = tree(t, section, n_features, &mut cat_words, &mut categorical)?;
        trees.push(Tree { group: (t % per_iteration) as u32, nodes: tree });
    }
    if !trees.len().is_multiple_of(per_iteration) {
        return Err(field("Tree", format!("{} trees are not whole iterations of {per_iteration}", trees.len())));
    }

    let link = match objective.as_str() {
        "binary" | "multiclassova" if sigmoid != 1.0 => Link::ScaledSigmoid(sigmoid),
        "binary" | "multiclassova" | "cross_entropy" => Link::Sigmoid,
        "multiclass" => Link::Softmax,
        "poisson" | "gamma" | "tweedie" => Link::Exp,
        _ => Link::Identity,
    };
    let groups = per_iteration;
    let ensemble = Ensemble::new(EnsembleSpec {
        semantics: Semantics::LightGBM,
        n_features,
        base_score: vec![0.0; groups],
        link,
        average,
        trees,
    })?;
    let classification = matches!(objective.as_str(), "binary" | "multiclass" | "multiclassova");
    Ok(ImportedModel {
        ensemble,
        feature_names,
        categorical_features: categorical.iter().enumerate().filter(|(_, c)| **c).map(|(i, _)| i).collect(),
        task: if classification { Task::Classification } else { Task::Regression },
        n_classes: if multiclass {
            num_class
        } else if classification {
            2
        } else {
            0
        },
        objective,
        predicts_class_index: false,
        format: SourceFormat::LightGbmText,
    })
}

/// One `Tree=` section as nodes: LightGBM's internal nodes first (in its order), then its
/// leaves; a child `c < 0` is leaf `!c`.
fn tree(
    t: usize,
    s: &Section<'_>,
    n_features: usize,
    cat_words: &mut usize,
    categorical: &mut [bool],
) -> Result<Vec<Node>, TreeError> {
    let name = |k: &str| format!("Tree={t}.{k}");
    let what = format!("Tree={t}");
    let (v, l) = s.require("num_leaves", &what)?;
    let leaves: usize = number(&name("num_leaves"), l, v)?;
    if leaves == 0 || leaves > MAX_NODES_PER_TREE / 2 {
        return Err(field(name("num_leaves"), format!("{leaves} is not between 1 and {}", MAX_NODES_PER_TREE / 2)));
    }
    if let Some((v, l)) = s.get("is_linear") {
        if number::<u8>(&name("is_linear"), l, v)? != 0 {
            return Err(TreeError::Unsupported {
                format: FORMAT,
                what: "tree",
                value: format!("Tree={t} is linear (linear_tree=true)"),
                supported: "constant leaves".into(),
            });
        }
    }
    let (v, l) = s.require("leaf_value", &what)?;
    let values: Vec<f64> = array(&name("leaf_value"), l, v, leaves)?;
    if leaves == 1 {
        return Ok(vec![Node::Leaf { value: values[0] }]);
    }
    let internal = leaves - 1;
    let get = |k: &str| s.require(k, &what);
    let (v, l) = get("split_feature")?;
    let features: Vec<i64> = array(&name("split_feature"), l, v, internal)?;
    let (v, l) = get("threshold")?;
    let thresholds: Vec<f64> = array(&name("threshold"), l, v, internal)?;
    let (v, l) = get("decision_type")?;
    let decisions: Vec<i64> = array(&name("decision_type"), l, v, internal)?;
    let (v, l) = get("left_child")?;
    let lefts: Vec<i64> = array(&name("left_child"), l, v, internal)?;
    let (v, l) = get("right_child")?;
    let rights: Vec<i64> = array(&name("right_child"), l, v, internal)?;
    let num_cat: usize = match s.get("num_cat") {
        Some((v, l)) => number(&name("num_cat"), l, v)?,
        None => 0,
    };
    let (boundaries, bits) = if num_cat > 0 {
        if num_cat > internal {
            return Err(field(name("num_cat"), format!("{num_cat} categorical splits in {internal} splits")));
        }
        let (v, l) = get("cat_boundaries")?;
        let boundaries: Vec<usize> = array(&name("cat_boundaries"), l, v, num_cat + 1)?;
        let total = *boundaries.last().unwrap_or(&0);
        *cat_words += total;
        if *cat_words > MAX_CATEGORY_WORDS {
            return Err(TreeError::TooLarge {
                format: FORMAT,
                what: "the category bitsets' words",
                found: *cat_words,
                limit: MAX_CATEGORY_WORDS,
            });
        }
        let (v, l) = get("cat_threshold")?;
        let bits: Vec<u32> = array(&name("cat_threshold"), l, v, total)?;
        (boundaries, bits)
    } else {
        (Vec::new(), Vec::new())
    };

    let child = |side: &str, i: usize, c: i64| -> Result<u32, TreeError> {
        let index = if c >= 0 {
            usize::try_from(c).ok().filter(|c| *c < internal)
        } else {
            usize::try_from(!c).ok().filter(|leaf| *leaf < leaves).map(|leaf| internal + leaf)
        };
        index
            .map(|i| i as u32)
            .ok_or_else(|| field(format!("Tree={t}.{side}[{i}]"), format!("{c} is neither a split nor a leaf")))
    };
    let mut nodes = Vec::with_capacity(internal + leaves);
    for i in 0..internal {
        let feature = u32::try_from(features[i])
            .ok()
            .filter(|f| (*f as usize) < n_features)
            .ok_or_else(|| field(format!("Tree={t}.split_feature[{i}]"), format!("{} is no feature", features[i])))?;
        let decision = decisions[i];
        if !(0..16).contains(&decision) {
            return Err(field(format!("Tree={t}.decision_type[{i}]"), format!("{decision} has unknown bits")));
        }
        let default_left = decision & 2 != 0;
        let split = if decision & 1 != 0 {
            let at = thresholds[i];
            let k =
                (at >= 0.0 && at.fract() == 0.0 && at < num_cat as f64).then_some(at as usize).ok_or_else(|| {
                    field(format!("Tree={t}.threshold[{i}]"), format!("{at} is not one of the {num_cat} category sets"))
                })?;
            let (start, end) = (boundaries[k], boundaries[k + 1]);
            let bitset = bits
                .get(start..end)
                .ok_or_else(|| field(name("cat_boundaries"), format!("{start}..{end} is outside cat_threshold")))?;
            categorical[feature as usize] = true;
            Split::Categorical { bitset: bitset.to_vec() }
        } else {
            let missing = match (decision >> 2) & 3 {
                0 => Missing::AsZero,
                1 => Missing::ZeroOrNan,
                2 => Missing::Default,
                m => return Err(field(format!("Tree={t}.decision_type[{i}]"), format!("missing type {m} is unknown"))),
            };
            Split::Numeric { threshold: thresholds[i], missing }
        };
        nodes.push(Node::Internal {
            feature,
            left: child("left_child", i, lefts[i])?,
            right: child("right_child", i, rights[i])?,
            default_left,
            split,
        });
    }
    nodes.extend(values.into_iter().map(|value| Node::Leaf { value }));
    Ok(nodes)
}
