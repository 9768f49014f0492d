//! Grown trees (decisions on bins) → the [`EnsembleSpec`] the compiled evaluator scores
//! (decisions on values), with the features' importance.

use wharf_trees::{EnsembleSpec, Link, Missing, Node, Semantics, Split, Tree};

use super::bins::Mapper;
use super::grow::{GNode, Grown};
use super::loss::Loss;
use super::split::Decision;

/// The spec of `trees` (round-major, `groups` per round), with each feature's total gain and
/// split count.
pub(crate) fn spec(
    trees: &[Grown],
    mappers: &[Mapper],
    groups: usize,
    base: Vec<f64>,
    loss: Loss,
    width: usize,
) -> (EnsembleSpec, Vec<f64>, Vec<u64>) {
    let mut gain = vec![0.0; width];
    let mut splits = vec![0u64; width];
    let mut out = Vec::with_capacity(trees.len());
    for (t, tree) in trees.iter().enumerate() {
        let nodes = tree
            .nodes
            .iter()
            .map(|node| match node {
                GNode::Leaf { value } => Node::leaf(*value),
                GNode::Split { feature, decision, left, right, gain: g, .. } => {
                    gain[*feature] += g;
                    splits[*feature] += 1;
                    let (left, right) = (*left as u32, *right as u32);
                    match (decision, &mappers[*feature]) {
                        (Decision::Numeric { bin, missing_left }, m) => Node::Internal {
                            feature: *feature as u32,
                            left,
                            right,
                            default_left: *missing_left,
                            split: Split::Numeric { threshold: m.threshold(*bin), missing: Missing::Default },
                        },
                        (Decision::Categorical { left: set }, Mapper::Categorical { codes, .. }) => {
                            let top = set.iter().map(|b| codes[*b]).max().unwrap_or(0) as usize;
                            let mut bitset = vec![0u32; top / 32 + 1];
                            for b in set {
                                let c = codes[*b] as usize;
                                bitset[c / 32] |= 1 << (c % 32);
                            }
                            Node::Internal {
                                feature: *feature as u32,
                                left,
                                right,
                                default_left: false,
                                split: Split::Categorical { bitset },
                            }
                        }
                        // A categorical decision is only ever made on a categorical mapper.
                        (Decision::Categorical { .. }, Mapper::Numeric { .. }) => Node::leaf(0.0),
                    }
                }
            })
            .collect();
        out.push(Tree { group: (t % groups) as u32, nodes });
    }
    let link = match loss {
        Loss::Binary => Link::Sigmoid,
        Loss::Softmax(_) => Link::Softmax,
        Loss::Squared | Loss::Absolute | Loss::Huber(_) => Link::Identity,
    };
    let spec = EnsembleSpec {
        semantics: Semantics::LightGBM,
        n_features: width,
        base_score: base,
        link,
        average: false,
        trees: out,
    };
    (spec, gain, splits)
}
