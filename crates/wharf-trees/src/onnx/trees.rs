//! `TreeEnsembleClassifier` / `TreeEnsembleRegressor` (ai.onnx.ml) → an [`EnsembleSpec`]
//! with ONNX's scoring rules.
//!
//! ONNX lists nodes in parallel arrays keyed by `(tree id, node id)`; a leaf may carry a
//! weight for several classes. Each tree becomes one tree per class it weights (the
//! evaluator's trees add to one group), so each class still sums its trees in tree order,
//! as ONNX Runtime does. Branch modes other than `BRANCH_LEQ` are rewritten to it: `x < t`
//! is `x <= next_down(t)` on `f32`, and `GT`/`GTE` swap the branches.

use std::collections::{BTreeMap, HashMap};

use crate::error::TreeError;
use crate::spec::{EnsembleSpec, Missing, Node, Semantics, Split, Tree, MAX_NODES, MAX_NODES_PER_TREE, MAX_TREES};
use crate::Link;

use super::attrs::Node as OnnxNode;
use super::spec::{Binary, Head, Transform};

/// The branch modes the evaluator reproduces.
const MODES: &str = "BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT, LEAF";

/// Compiles a tree operator into a head with `outputs` groups (classes, or 1 target).
pub(crate) fn compile(
    node: &OnnxNode<'_>,
    classifier: bool,
    n_classes: usize,
    width: usize,
    transform: Transform,
) -> Result<Head, TreeError> {
    let tree_ids = node.ints("nodes_treeids")?;
    let node_ids = node.ints("nodes_nodeids")?;
    let features = node.ints("nodes_featureids")?;
    let modes = node.strings("nodes_modes")?;
    let values = node.floats_or_tensor("nodes_values")?;
    let trues = node.ints("nodes_truenodeids")?;
    let falses = node.ints("nodes_falsenodeids")?;
    let tracks = node.ints("nodes_missing_value_tracks_true")?;
    let n = tree_ids.len();
    if n == 0 {
        return Err(node.error("nodes_treeids", "the ensemble has no nodes"));
    }
    if n > MAX_NODES {
        return Err(node.error("nodes_treeids", format!("{n} nodes, over the limit of {MAX_NODES}")));
    }
    for (name, len) in [
        ("nodes_nodeids", node_ids.len()),
        ("nodes_featureids", features.len()),
        ("nodes_modes", modes.len()),
        ("nodes_values", values.len()),
        ("nodes_truenodeids", trues.len()),
        ("nodes_falsenodeids", falses.len()),
    ] {
        if len != n {
            return Err(node.error(name, format!("{len} values; nodes_treeids has {n}")));
        }
    }
    if !tracks.is_empty() && tracks.len() != n {
        return Err(node.error("nodes_missing_value_tracks_true", format!("{} values for {n} nodes", tracks.len())));
    }
    let prefix = if classifier { "class" } else { "target" };
    let w_trees = node.ints(&format!("{prefix}_treeids"))?;
    let w_nodes = node.ints(&format!("{prefix}_nodeids"))?;
    let w_ids = node.ints(&format!("{prefix}_ids"))?;
    let w_values = node.floats_or_tensor(&format!("{prefix}_weights"))?;
    let m = w_trees.len();
    for (name, len) in [("nodeids", w_nodes.len()), ("ids", w_ids.len()), ("weights", w_values.len())] {
        if len != m {
            return Err(node.error(&format!("{prefix}_{name}"), format!("{len} values; {prefix}_treeids has {m}")));
        }
    }
    let groups = if classifier { n_classes } else { 1 };

    // Trees by id (ascending: ONNX Runtime's order), nodes by id within a tree.
    let mut trees: BTreeMap<i64, BTreeMap<i64, usize>> = BTreeMap::new();
    for i in 0..n {
        let nodes = trees.entry(tree_ids[i]).or_default();
        if nodes.insert(node_ids[i], i).is_some() {
            return Err(node.error(
                &format!("nodes_nodeids[{i}]"),
                format!("node {} of tree {} appears twice", node_ids[i], tree_ids[i]),
            ));
        }
    }
    if trees.len() > MAX_TREES {
        return Err(node.error("nodes_treeids", format!("{} trees, over the limit of {MAX_TREES}", trees.len())));
    }
    // Leaf weights: (tree, node) → (group, weight).
    let mut weights: HashMap<(i64, i64), Vec<(usize, f32)>> = HashMap::new();
    let mut weighted = vec![false; groups];
    let mut all_positive = true;
    for j in 0..m {
        let g = w_ids[j];
        if g < 0 || g as usize >= groups {
            return Err(node.error(
                &format!("{prefix}_ids[{j}]"),
                format!("{g} is not below the {groups} {}", if classifier { "classes" } else { "targets" }),
            ));
        }
        let Some(nodes) = trees.get(&w_trees[j]) else {
            return Err(node.error(&format!("{prefix}_treeids[{j}]"), format!("no tree {}", w_trees[j])));
        };
        let Some(&at) = nodes.get(&w_nodes[j]) else {
            return Err(
                node.error(&format!("{prefix}_nodeids[{j}]"), format!("no node {} in tree {}", w_nodes[j], w_trees[j]))
            );
        };
        if modes[at] != "LEAF" {
            return Err(node.error(&format!("{prefix}_nodeids[{j}]"), format!("node {} is not a leaf", w_nodes[j])));
        }
        if !w_values[j].is_finite() {
            return Err(node.error(&format!("{prefix}_weights[{j}]"), "not a finite number"));
        }
        let entry = weights.entry((w_trees[j], w_nodes[j])).or_default();
        if entry.iter().any(|(eg, _)| *eg == g as usize) {
            return Err(node.error(
                &format!("{prefix}_ids[{j}]"),
                format!("leaf {} of tree {} weights class {g} twice", w_nodes[j], w_trees[j]),
            ));
        }
        entry.push((g as usize, w_values[j]));
        weighted[g as usize] = true;
        all_positive &= w_values[j] >= 0.0;
    }

    let mut out = Vec::new();
    let mut total = 0usize;
    for (tree_id, nodes) in &trees {
        if nodes.len() > MAX_NODES_PER_TREE {
            return Err(node.error("nodes_treeids", format!("tree {tree_id} has {} nodes", nodes.len())));
        }
        let local: HashMap<i64, u32> = nodes.keys().enumerate().map(|(k, id)| (*id, k as u32)).collect();
        let child = |i: usize, ids: &[i64], name: &str| -> Result<u32, TreeError> {
            local
                .get(&ids[i])
                .copied()
                .ok_or_else(|| node.error(&format!("{name}[{i}]"), format!("no node {} in tree {tree_id}", ids[i])))
        };
        // A regressor keeps every tree (AVERAGE divides by them all); a classifier one copy
        // per class the tree weights.
        let mut groups_of_tree: Vec<usize> = if classifier {
            let mut gs: Vec<usize> = nodes
                .keys()
                .filter_map(|id| weights.get(&(*tree_id, *id)))
                .flat_map(|ws| ws.iter().map(|(g, _)| *g))
                .collect();
            gs.sort_unstable();
            gs.dedup();
            gs
        } else {
            vec![0]
        };
        if groups_of_tree.is_empty() {
            continue;
        }
        groups_of_tree.shrink_to_fit();
        for g in groups_of_tree {
            let mut tree_nodes = Vec::with_capacity(nodes.len());
            for (id, &i) in nodes {
                let value = |ws: Option<&Vec<(usize, f32)>>| {
                    ws.and_then(|ws| ws.iter().find(|(wg, _)| *wg == g)).map(|(_, v)| *v as f64).unwrap_or(0.0)
                };
                let mode = modes[i].as_str();
                if mode == "LEAF" {
                    tree_nodes.push(Node::leaf(value(weights.get(&(*tree_id, *id)))));
                    continue;
                }
                let feature = features[i];
                if feature < 0 || feature as usize >= width {
                    return Err(node.error(
                        &format!("nodes_featureids[{i}]"),
                        format!("{feature} is not below the input's {width} features"),
                    ));
                }
                let t = values[i];
                if t.is_nan() {
                    return Err(node.error(&format!("nodes_values[{i}]"), "NaN is not a threshold"));
                }
                let track_true = tracks.get(i).copied().unwrap_or(0) != 0;
                let (yes, no) = (child(i, trues, "nodes_truenodeids")?, child(i, falses, "nodes_falsenodeids")?);
                // (threshold for `x <= t`, whether the "true" branch is the `<=` side)
                let (threshold, leq_is_true) = match mode {
                    "BRANCH_LEQ" => (t, true),
                    "BRANCH_GT" => (t, false),
                    "BRANCH_LT" | "BRANCH_GTE" if t.is_finite() => (t.next_down(), mode == "BRANCH_LT"),
                    "BRANCH_LT" | "BRANCH_GTE" => {
                        return Err(
                            node.error(&format!("nodes_values[{i}]"), format!("{mode} on an infinite threshold"))
                        )
                    }
                    other => {
                        return Err(TreeError::Unsupported {
                            format: "onnx",
                            what: "tree node mode",
                            value: format!("{other} ({} attribute `nodes_modes[{i}]`)", node.label()),
                            supported: MODES.into(),
                        })
                    }
                };
                let (left, right) = if leq_is_true { (yes, no) } else { (no, yes) };
                tree_nodes.push(Node::Internal {
                    feature: feature as u32,
                    left,
                    right,
                    // NaN takes the "true" branch when tracked, else fails the comparison.
                    default_left: track_true == leq_is_true,
                    split: Split::Numeric { threshold: threshold as f64, missing: Missing::Default },
                });
            }
            total += tree_nodes.len();
            if total > MAX_NODES {
                return Err(node.error("nodes_treeids", format!("over {MAX_NODES} nodes once split per class")));
            }
            out.push(Tree { group: g as u32, nodes: tree_nodes });
        }
    }
    if out.len() > MAX_TREES {
        return Err(node.error("nodes_treeids", format!("{} trees once split per class", out.len())));
    }

    let base_values = node.floats_or_tensor("base_values")?;
    if base_values.len() > groups || base_values.iter().any(|b| !b.is_finite()) {
        return Err(node.error("base_values", format!("{} values for {groups} outputs", base_values.len())));
    }
    let average = if classifier {
        false
    } else {
        match node.string("aggregate_function")?.as_deref().unwrap_or("SUM") {
            "SUM" => false,
            "AVERAGE" => true,
            other => {
                return Err(TreeError::Unsupported {
                    format: "onnx",
                    what: "aggregate_function",
                    value: format!("{other} ({})", node.label()),
                    supported: "SUM, AVERAGE".into(),
                })
            }
        }
    };
    let binary = if classifier && groups == 2 && !weighted[1] && base_values.len() < 2 {
        // One scored class: ONNX Runtime's binary form, by the sign of the weights.
        match (all_positive, transform) {
            (true, Transform::None) => Binary::Complement,
            (false, Transform::None | Transform::Logistic) => Binary::Signed,
            (_, other) => {
                return Err(TreeError::Unsupported {
                    format: "onnx",
                    what: "two-class tree post_transform",
                    value: format!("{other:?} with one scored class ({})", node.label()),
                    supported: "NONE, LOGISTIC (signed weights)".into(),
                })
            }
        }
    } else {
        if classifier && groups == 2 && weighted[1] && base_values.len() == 2 {
            return Err(TreeError::Unsupported {
                format: "onnx",
                what: "two-class tree ensemble",
                value: format!("both classes weighted with two base_values ({})", node.label()),
                supported: "one base value, or none".into(),
            });
        }
        Binary::PerClass
    };
    let ensemble = EnsembleSpec {
        semantics: Semantics::Onnx,
        n_features: width,
        base_score: vec![0.0; groups],
        link: Link::Identity,
        average,
        trees: out,
    };
    Ok(Head::Trees { ensemble, base_values, transform, binary })
}
