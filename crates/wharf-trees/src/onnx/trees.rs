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
                        format!("{feature} is not below the model's {width} inputs"),
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
                            value: format!("{other} ({} attribute nodes_modes[{i}])", node.label()),
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

/// The largest category a `BRANCH_MEMBER` set may name: its bitset is `max / 32 + 1` words per
/// node, and [`Onx`](crate::walk)'s category reader names none from 2^24 on.
const MAX_MEMBER: f32 = 65_535.0;

/// ONNX Runtime (1.31) scores a `BRANCH_MEMBER` set of at most this many values, all whole in
/// `0..=MEMBER_WHOLE_MAX`, as its chain of `x == v` tests (only whole values match); any
/// other set is fused into one `int32` set test on `static_cast<int32_t>(x)` (truncation).
/// (ONNX Runtime's own `BRANCH_MEMBER` and `BRANCH_MEMBER_BIGSET` node modes; 1.20's
/// `tree_ensemble_attribute.h` unrolls every set into the chain.) The edges were found by
/// scoring sets of 30 and 31 values, largest 30 and 31, with ONNX Runtime 1.31.1.
const MEMBER_WHOLE_LEN: usize = 30;
const MEMBER_WHOLE_MAX: f32 = 30.0;

/// A `BRANCH_MEMBER` node's set: its bitset, and whether only whole values match.
type MemberSet = (Vec<u32>, bool);

/// Each `BRANCH_MEMBER` node's set as a bitset and whether only whole values match (see
/// [`MEMBER_WHOLE_LEN`]), by node index; `None` for other nodes. ONNX Runtime hands the
/// NaN-separated groups of `membership_values` to the member nodes in node order.
fn member_sets(node: &OnnxNode<'_>, modes: &[u8]) -> Result<Vec<Option<MemberSet>>, TreeError> {
    let values = node.tensor_floats("membership_values")?;
    let mut groups = values.split(|v| v.is_nan());
    let mut out = Vec::with_capacity(modes.len());
    for (i, mode) in modes.iter().enumerate() {
        if *mode != 6 {
            out.push(None);
            continue;
        }
        let at = || format!("membership_values (the set of nodes_modes[{i}], BRANCH_MEMBER)");
        // ONNX Runtime indexes an empty set's first value (undefined behaviour): refused.
        let set = groups.next().filter(|g| !g.is_empty()).ok_or_else(|| node.error(&at(), "the set is empty"))?;
        let mut bitset: Vec<u32> = Vec::new();
        for v in set {
            // Only whole, non-negative members fit a bitset. ONNX Runtime refuses a fraction
            // in a truncated set and compares it exactly in a small one (x == 1.5), which a
            // bitset cannot say; a negative member would need negative categories.
            if !(v.trunc() == *v && (0.0..=MAX_MEMBER).contains(v)) {
                return Err(node.error(
                    &at(),
                    format!("{v} is not a whole number from 0 to {MAX_MEMBER} (the categories Wharf sets hold)"),
                ));
            }
            let c = *v as u32;
            let word = (c / 32) as usize;
            if bitset.len() <= word {
                bitset.resize(word + 1, 0);
            }
            bitset[word] |= 1 << (c % 32);
        }
        let whole_only = set.len() <= MEMBER_WHOLE_LEN && set.iter().all(|v| *v <= MEMBER_WHOLE_MAX);
        out.push(Some((bitset, whole_only)));
    }
    // Values left over belong to no member node: ONNX Runtime ignores them; a malformed list,
    // refused rather than guessed at.
    if groups.any(|g| !g.is_empty()) {
        return Err(node.error("membership_values", "more NaN-separated sets than BRANCH_MEMBER nodes"));
    }
    Ok(out)
}

/// `TreeEnsemble` (ai.onnx.ml opset 5): interior nodes and leaves in separate arrays, trees by
/// their root index, one weight and target per leaf. Compiled like the older operators (one
/// tree per target it reaches, `f32` sums in root order); `n_targets` outputs, no base values.
/// `BRANCH_MEMBER` nodes become [`Split::Member`]: the set goes to the "true" branch.
pub(crate) fn compile_v5(
    node: &OnnxNode<'_>,
    width: usize,
    targets: usize,
    transform: Transform,
) -> Result<Head, TreeError> {
    let features = node.ints("nodes_featureids")?;
    let splits = node.tensor_floats("nodes_splits")?;
    let modes = node.tensor_bytes("nodes_modes")?;
    let trues = node.ints("nodes_truenodeids")?;
    let true_leafs = node.ints("nodes_trueleafs")?;
    let falses = node.ints("nodes_falsenodeids")?;
    let false_leafs = node.ints("nodes_falseleafs")?;
    let tracks = node.ints("nodes_missing_value_tracks_true")?;
    let leaf_targets = node.ints("leaf_targetids")?;
    let leaf_weights = node.tensor_floats("leaf_weights")?;
    let roots = node.ints("tree_roots")?;
    let n = features.len();
    if n > MAX_NODES {
        return Err(node.error("nodes_featureids", format!("{n} nodes, over the limit of {MAX_NODES}")));
    }
    for (name, len) in [
        ("nodes_splits", splits.len()),
        ("nodes_modes", modes.len()),
        ("nodes_truenodeids", trues.len()),
        ("nodes_trueleafs", true_leafs.len()),
        ("nodes_falsenodeids", falses.len()),
        ("nodes_falseleafs", false_leafs.len()),
    ] {
        if len != n {
            return Err(node.error(name, format!("{len} values; nodes_featureids has {n}")));
        }
    }
    if !tracks.is_empty() && tracks.len() != n {
        return Err(node.error("nodes_missing_value_tracks_true", format!("{} values for {n} nodes", tracks.len())));
    }
    let mut members = member_sets(node, &modes)?;
    if leaf_targets.len() != leaf_weights.len() || leaf_targets.len() > MAX_NODES {
        return Err(node
            .error("leaf_weights", format!("{} weights for {} leaf targets", leaf_weights.len(), leaf_targets.len())));
    }
    if roots.is_empty() || roots.len() > MAX_TREES {
        return Err(node.error("tree_roots", format!("{} trees (1 to {MAX_TREES})", roots.len())));
    }
    for (j, (t, w)) in leaf_targets.iter().zip(&leaf_weights).enumerate() {
        if *t < 0 || *t as usize >= targets {
            return Err(node.error(&format!("leaf_targetids[{j}]"), format!("{t} is not below the {targets} targets")));
        }
        if !w.is_finite() {
            return Err(node.error(&format!("leaf_weights[{j}]"), "not a finite number"));
        }
    }
    let aggregate = node.int("aggregate_function").unwrap_or(1);
    let average = match aggregate {
        1 => false,
        0 if targets == 1 => true,
        other => {
            return Err(TreeError::Unsupported {
                format: "onnx",
                what: "aggregate_function",
                value: format!("{other} ({})", node.label()),
                supported: "1 (SUM); 0 (AVERAGE) for one target".into(),
            })
        }
    };
    // A child: (is a leaf, index) checked against its array.
    let child = |i: usize, ids: &[i64], leafs: &[i64], name: &str| -> Result<(bool, usize), TreeError> {
        let leaf = leafs[i] != 0;
        let limit = if leaf { leaf_targets.len() } else { n };
        usize::try_from(ids[i]).ok().filter(|c| *c < limit).map(|c| (leaf, c)).ok_or_else(|| {
            node.error(
                &format!("{name}[{i}]"),
                format!("{} is not one of the {limit} {}", ids[i], if leaf { "leaves" } else { "nodes" }),
            )
        })
    };
    let mut out = Vec::new();
    let mut total = 0usize;
    let mut seen = vec![false; n];
    for (t, root) in roots.iter().enumerate() {
        let root = usize::try_from(*root)
            .ok()
            .filter(|r| *r < n)
            .ok_or_else(|| node.error(&format!("tree_roots[{t}]"), format!("{root} is not one of the {n} nodes")))?;
        // Walk the tree once (each interior node at most once over all trees: no cycle, no
        // shared subtree), numbering nodes in visit order; leaves are (target, weight).
        enum Item {
            Split {
                feature: u32,
                threshold: f32,
                leq_is_true: bool,
                track_true: bool,
                yes: u32,
                no: u32,
                /// BRANCH_MEMBER: the set and whether only whole values match.
                member: Option<MemberSet>,
            },
            Leaf {
                target: usize,
                weight: f32,
            },
        }
        let mut items: Vec<Item> = Vec::new();
        // (is a leaf, its index, the split that points at it and on which branch)
        type Pending = (bool, usize, Option<(usize, bool)>);
        let mut stack: Vec<Pending> = vec![(false, root, None)];
        while let Some((leaf, i, parent)) = stack.pop() {
            let at = items.len() as u32;
            if let Some((p, is_yes)) = parent {
                if let Item::Split { yes, no, .. } = &mut items[p] {
                    if is_yes {
                        *yes = at;
                    } else {
                        *no = at;
                    }
                }
            }
            if leaf {
                items.push(Item::Leaf { target: leaf_targets[i] as usize, weight: leaf_weights[i] });
            } else {
                if seen[i] {
                    return Err(node.error(
                        &format!("tree_roots[{t}]"),
                        format!("node {i} is reached twice (a cycle or a shared subtree)"),
                    ));
                }
                seen[i] = true;
                let feature = features[i];
                if feature < 0 || feature as usize >= width {
                    return Err(node.error(
                        &format!("nodes_featureids[{i}]"),
                        format!("{feature} is not below the model's {width} inputs"),
                    ));
                }
                let v = splits[i];
                let (threshold, leq_is_true) = match (modes[i], v.is_finite()) {
                    // The set test; `nodes_splits` is unused (ONNX Runtime reads the set).
                    (6, _) => (0.0, false),
                    (0, _) if !v.is_nan() => (v, true),
                    (3, _) if !v.is_nan() => (v, false),
                    (1, true) => (v.next_down(), true),
                    (2, true) => (v.next_down(), false),
                    (mode, _) => {
                        return Err(TreeError::Unsupported {
                            format: "onnx",
                            what: "tree node mode",
                            value: format!("{mode} on {v} ({} attribute nodes_modes[{i}])", node.label()),
                            supported: "0 (LEQ), 1 (LT), 2 (GTE), 3 (GT) on a number, 6 (MEMBER)".into(),
                        })
                    }
                };
                items.push(Item::Split {
                    feature: feature as u32,
                    threshold,
                    leq_is_true,
                    track_true: tracks.get(i).copied().unwrap_or(0) != 0,
                    yes: 0,
                    no: 0,
                    member: members.get_mut(i).and_then(Option::take),
                });
                let idx = items.len() - 1;
                let yes = child(i, trues, true_leafs, "nodes_truenodeids")?;
                let no = child(i, falses, false_leafs, "nodes_falsenodeids")?;
                stack.push((no.0, no.1, Some((idx, false))));
                stack.push((yes.0, yes.1, Some((idx, true))));
            }
            if items.len() > MAX_NODES_PER_TREE {
                return Err(node.error(&format!("tree_roots[{t}]"), format!("over {MAX_NODES_PER_TREE} nodes")));
            }
        }
        let mut groups: Vec<usize> = items
            .iter()
            .filter_map(|it| if let Item::Leaf { target, .. } = it { Some(*target) } else { None })
            .collect();
        groups.sort_unstable();
        groups.dedup();
        if targets == 1 {
            groups = vec![0];
        }
        for g in groups {
            let nodes: Vec<Node> = items
                .iter()
                .map(|it| match it {
                    &Item::Leaf { target, weight } => Node::leaf(if target == g { weight as f64 } else { 0.0 }),
                    Item::Split { feature, yes, no, track_true, member: Some((bitset, whole_only)), .. } => {
                        // The set goes right (the "true" branch), everything else left; NaN
                        // takes the true branch when tracked (each `x == v` test of ONNX
                        // Runtime's chain carries the node's flag).
                        Node::Internal {
                            feature: *feature,
                            left: *no,
                            right: *yes,
                            default_left: !*track_true,
                            split: Split::Member { bitset: bitset.clone(), whole_only: *whole_only },
                        }
                    }
                    &Item::Split { feature, threshold, leq_is_true, track_true, yes, no, member: None } => {
                        let (left, right) = if leq_is_true { (yes, no) } else { (no, yes) };
                        Node::Internal {
                            feature,
                            left,
                            right,
                            default_left: track_true == leq_is_true,
                            split: Split::Numeric { threshold: threshold as f64, missing: Missing::Default },
                        }
                    }
                })
                .collect();
            total += nodes.len();
            if total > MAX_NODES || out.len() >= MAX_TREES {
                return Err(node.error("tree_roots", "over the caps once split per target"));
            }
            out.push(Tree { group: g as u32, nodes });
        }
    }
    let ensemble = EnsembleSpec {
        semantics: Semantics::Onnx,
        n_features: width,
        base_score: vec![0.0; targets],
        link: Link::Identity,
        average,
        trees: out,
    };
    Ok(Head::Trees { ensemble, base_values: Vec::new(), transform, binary: Binary::PerClass })
}
