//! The plain, checkable description of an ensemble that importers produce and
//! [`Ensemble::new`](crate::Ensemble::new) compiles. Nothing here is fast; everything here is
//! validated before anything is compiled from it.

use serde::{Deserialize, Serialize};

use crate::error::TreeError;
use crate::link::Link;
pub use crate::semantics::Semantics;

/// Most trees an ensemble may have (500 rounds × 100 classes × 2 parallel trees fits).
pub const MAX_TREES: usize = 200_000;
/// Most nodes (splits and leaves) over all trees; ~24 bytes each once compiled.
pub const MAX_NODES: usize = 1 << 26;
/// Most nodes in one tree.
pub const MAX_NODES_PER_TREE: usize = 1 << 22;
/// Most input features.
pub const MAX_FEATURES: usize = 1 << 20;
/// Most output groups (classes).
pub const MAX_GROUPS: usize = 10_000;
/// Most 32-bit words of category bitsets over the whole ensemble.
pub const MAX_CATEGORY_WORDS: usize = 1 << 24;

/// What a split does with a missing value (NaN) and, for LightGBM's `Zero` type, with zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Missing {
    /// NaN takes the split's default direction.
    Default,
    /// NaN is read as `0.0` and compared (LightGBM's missing type `None`).
    AsZero,
    /// NaN and zero take the default direction (LightGBM's missing type `Zero`).
    ZeroOrNan,
}

/// How a split decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Split {
    /// Compare the value with a threshold (`<` or `<=` per [`Semantics`]).
    Numeric {
        /// The threshold, as the source stores it.
        threshold: f64,
        /// Where missing values go.
        missing: Missing,
    },
    /// Look the value's category (its integer part) up in a bitset: bit `c % 32` of word
    /// `c / 32`. Which side the set goes to is the [`Semantics`]'.
    Categorical {
        /// The bitset's words.
        bitset: Vec<u32>,
    },
    /// ONNX's `BRANCH_MEMBER` (only under [`Semantics::Onnx`]): the "true" branch, `right`,
    /// when the value's category is in the bitset (bit `c % 32` of word `c / 32`); every
    /// other non-NaN value goes `left`, NaN takes the default direction. ONNX Runtime reads
    /// a value's category one of two ways, chosen per node from its set (see the importer),
    /// so the node says which.
    Member {
        /// The bitset's words.
        bitset: Vec<u32>,
        /// Only a whole value names a category (ONNX Runtime's chain of `x == v` tests);
        /// otherwise the value is truncated toward zero (its `int32` cast), so `-0.5` and
        /// `2.7` name 0 and 2.
        whole_only: bool,
    },
}

/// One node of a tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Node {
    /// A leaf: what the tree adds to its group's margin.
    Leaf {
        /// The leaf value (already scaled by the learning rate).
        value: f64,
    },
    /// An internal node.
    Internal {
        /// The input column it reads.
        feature: u32,
        /// Index (in the tree's nodes) of the child taken when the split says left.
        left: u32,
        /// Index of the other child.
        right: u32,
        /// Where a missing value goes (for [`Missing::Default`] and [`Missing::ZeroOrNan`];
        /// XGBoost's categorical splits too).
        default_left: bool,
        /// The decision.
        split: Split,
    },
}

impl Node {
    /// A leaf.
    pub fn leaf(value: f64) -> Node {
        Node::Leaf { value }
    }

    /// A numeric split whose missing values take the default direction.
    pub fn numeric(feature: u32, threshold: f64, left: u32, right: u32, default_left: bool) -> Node {
        Node::Internal {
            feature,
            left,
            right,
            default_left,
            split: Split::Numeric { threshold, missing: Missing::Default },
        }
    }
}

/// One tree: `nodes[0]` is the root; it adds to output group `group`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// The output group (class) the tree contributes to.
    pub group: u32,
    /// Nodes; children are indices into this vector.
    pub nodes: Vec<Node>,
}

/// Everything that defines an ensemble's predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleSpec {
    /// Whose scoring rules apply.
    pub semantics: Semantics,
    /// Width of an input row.
    pub n_features: usize,
    /// Margin each group starts from (already in margin space); its length is the number of
    /// output groups.
    pub base_score: Vec<f64>,
    /// Maps margins to predictions.
    pub link: Link,
    /// Divide the summed margins by the number of trees per group (random-forest mode).
    pub average: bool,
    /// The trees, in the order the source sums them.
    pub trees: Vec<Tree>,
}

impl EnsembleSpec {
    /// Number of output groups.
    pub fn n_groups(&self) -> usize {
        self.base_score.len()
    }

    /// Checks every bound the compiled form relies on: counts under the caps, every child
    /// and feature index in range, every node reached once from its root (so no cycle and no
    /// shared subtree), finite values.
    pub fn validate(&self) -> Result<(), TreeError> {
        let f = "ensemble";
        let too_large = |what, found, limit| TreeError::TooLarge { format: f, what, found, limit };
        if self.trees.len() > MAX_TREES {
            return Err(too_large("the number of trees", self.trees.len(), MAX_TREES));
        }
        if self.n_features == 0 {
            return Err(TreeError::field(f, "n_features", "must be at least 1"));
        }
        if self.n_features > MAX_FEATURES {
            return Err(too_large("the number of features", self.n_features, MAX_FEATURES));
        }
        let groups = self.n_groups();
        if groups == 0 {
            return Err(TreeError::field(f, "base_score", "needs one value per output group"));
        }
        if groups > MAX_GROUPS {
            return Err(too_large("the number of output groups", groups, MAX_GROUPS));
        }
        if let Some(i) = self.base_score.iter().position(|b| !b.is_finite()) {
            return Err(TreeError::field(f, format!("base_score[{i}]"), "not a finite number"));
        }
        if matches!(self.link, Link::Softmax) && groups < 2 {
            return Err(TreeError::field(f, "link", "softmax needs at least two output groups"));
        }
        if let Link::ScaledSigmoid(scale) = self.link {
            if !scale.is_finite() || scale <= 0.0 {
                return Err(TreeError::field(
                    f,
                    "link",
                    format!("the sigmoid's scale {scale} is not a positive number"),
                ));
            }
        }
        let mut total = 0usize;
        let mut words = 0usize;
        for (t, tree) in self.trees.iter().enumerate() {
            let n = tree.nodes.len();
            if n == 0 {
                return Err(TreeError::field(f, format!("trees[{t}]"), "has no nodes"));
            }
            if n > MAX_NODES_PER_TREE {
                return Err(too_large("the nodes of one tree", n, MAX_NODES_PER_TREE));
            }
            total += n;
            if total > MAX_NODES {
                return Err(too_large("the number of nodes", total, MAX_NODES));
            }
            if tree.group as usize >= groups {
                return Err(TreeError::field(
                    f,
                    format!("trees[{t}].group"),
                    format!("{} is not below the {groups} output groups", tree.group),
                ));
            }
            let mut seen = vec![false; n];
            let mut stack = vec![0usize];
            seen[0] = true;
            while let Some(i) = stack.pop() {
                let at = |what: &str| format!("trees[{t}].nodes[{i}].{what}");
                match &tree.nodes[i] {
                    Node::Leaf { value } => {
                        if !value.is_finite() {
                            return Err(TreeError::field(f, at("value"), "not a finite number"));
                        }
                    }
                    Node::Internal { feature, left, right, split, .. } => {
                        if *feature as usize >= self.n_features {
                            return Err(TreeError::field(
                                f,
                                at("feature"),
                                format!("{feature} is not below the {} features", self.n_features),
                            ));
                        }
                        match split {
                            Split::Numeric { missing, .. }
                                if self.semantics == Semantics::Onnx && *missing != Missing::Default =>
                            {
                                return Err(TreeError::field(
                                    f,
                                    at("split"),
                                    "ONNX's missing values take the node's side (Missing::Default)",
                                ));
                            }
                            Split::Categorical { .. } if self.semantics == Semantics::Onnx => {
                                return Err(TreeError::field(
                                    f,
                                    at("split"),
                                    "ONNX trees have set-membership splits (Split::Member), not categorical ones",
                                ));
                            }
                            Split::Member { .. } if self.semantics != Semantics::Onnx => {
                                return Err(TreeError::field(f, at("split"), "set-membership splits are ONNX's"));
                            }
                            Split::Numeric { threshold, .. } => {
                                let fits = match self.semantics {
                                    Semantics::XGBoost | Semantics::Onnx => {
                                        !threshold.is_nan() && (*threshold as f32) as f64 == *threshold
                                    }
                                    Semantics::LightGBM => !threshold.is_nan(),
                                };
                                if !fits {
                                    return Err(TreeError::field(
                                        f,
                                        at("threshold"),
                                        format!("{threshold} is not a threshold of this format"),
                                    ));
                                }
                            }
                            Split::Categorical { bitset } | Split::Member { bitset, .. } => {
                                words += bitset.len();
                                if words > MAX_CATEGORY_WORDS {
                                    return Err(too_large("the category bitsets' words", words, MAX_CATEGORY_WORDS));
                                }
                            }
                        }
                        for (side, child) in [("left", *left), ("right", *right)] {
                            let c = child as usize;
                            if c >= n {
                                return Err(TreeError::field(
                                    f,
                                    at(side),
                                    format!("{child} is not a node of this tree ({n} nodes)"),
                                ));
                            }
                            if seen[c] {
                                return Err(TreeError::field(
                                    f,
                                    at(side),
                                    format!("node {child} is reached twice (a cycle or a shared subtree)"),
                                ));
                            }
                            seen[c] = true;
                            stack.push(c);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
