//! The compiled forms against a plain recursive evaluator of the same rules, on generated
//! ensembles: every row width the kernels specialise on (batches: up to 32, up to 64,
//! wider; a single row: up to 64, up to 1024, wider), depths from a lone leaf to past the
//! perfect-tree limit, batches that are and are not whole groups of interleaved rows, with
//! and without missing values; for each of XGBoost's, LightGBM's and ONNX's rules.

use wharf_trees::{Ensemble, EnsembleSpec, Link, Missing, Node, Semantics, Split, Tree};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() * n as f64) as usize % n.max(1)
    }
}

/// A random tree of at most `depth` levels, nodes in depth-first order.
fn tree(rng: &mut Lcg, depth: u32, width: usize, semantics: Semantics, group: u32, categorical: bool) -> Tree {
    fn grow(rng: &mut Lcg, nodes: &mut Vec<Node>, depth: u32, width: usize, s: Semantics, categorical: bool) -> u32 {
        let at = nodes.len();
        if depth == 0 || rng.next() < 0.15 {
            nodes.push(Node::leaf(((rng.next() - 0.5) as f32) as f64));
            return at as u32;
        }
        nodes.push(Node::leaf(0.0));
        let left = grow(rng, nodes, depth - 1, width, s, categorical);
        let right = grow(rng, nodes, depth - 1, width, s, categorical);
        let feature = rng.below(width) as u32;
        let split = if categorical && rng.next() < 0.3 {
            Split::Categorical { bitset: vec![rng.next().to_bits() as u32] }
        } else {
            // Now and then a zero of either sign, which the rows also hold.
            let threshold =
                if rng.next() < 0.1 { [0.0, -0.0][rng.below(2)] } else { ((rng.next() * 4.0 - 2.0) as f32) as f64 };
            let missing = match (s, rng.below(3)) {
                (Semantics::LightGBM, 0) => Missing::AsZero,
                (Semantics::LightGBM, 1) if categorical => Missing::ZeroOrNan,
                _ => Missing::Default,
            };
            Split::Numeric { threshold, missing }
        };
        nodes[at] = Node::Internal { feature, left, right, default_left: rng.next() < 0.5, split };
        at as u32
    }
    let mut nodes = Vec::new();
    grow(rng, &mut nodes, depth, width, semantics, categorical);
    Tree { group, nodes }
}

/// The rules, written the plain way.
fn reference(spec: &EnsembleSpec, row: &[f64]) -> Vec<f64> {
    let xgb = spec.semantics == Semantics::XGBoost;
    let onnx = spec.semantics == Semantics::Onnx;
    let lgb = spec.semantics == Semantics::LightGBM;
    let mut acc32: Vec<f32> = spec.base_score.iter().map(|b| *b as f32).collect();
    let mut acc64 = spec.base_score.clone();
    for tree in &spec.trees {
        let mut i = 0usize;
        let value = loop {
            match &tree.nodes[i] {
                Node::Leaf { value } => break *value,
                Node::Internal { feature, left, right, default_left, split } => {
                    let raw = row[*feature as usize];
                    let x = if lgb && raw.abs() <= 1e-35f32 as f64 { 0.0 } else { raw };
                    let go_left = match split {
                        Split::Numeric { threshold, missing } => match missing {
                            Missing::AsZero => (if x.is_nan() { 0.0 } else { x }) <= *threshold,
                            Missing::ZeroOrNan if x.is_nan() || x == 0.0 => *default_left,
                            _ if x.is_nan() => *default_left,
                            _ if xgb => (x as f32) < (*threshold as f32),
                            _ if onnx => (x as f32) <= (*threshold as f32),
                            _ => x <= *threshold,
                        },
                        Split::Categorical { bitset } => {
                            if x.is_nan() {
                                xgb && *default_left
                            } else {
                                let v = if xgb { (x as f32) as f64 } else { x };
                                let valid = if xgb {
                                    (0.0..16_777_216.0).contains(&v)
                                } else {
                                    v > -1.0 && v < 2_147_483_648.0
                                };
                                if !valid {
                                    xgb
                                } else {
                                    let c = v as u32;
                                    let set = bitset.get((c / 32) as usize).is_some_and(|w| (w >> (c % 32)) & 1 == 1);
                                    if xgb {
                                        !set
                                    } else {
                                        set
                                    }
                                }
                            }
                        }
                        _ => unreachable!("only the splits built above"),
                    };
                    i = if go_left { *left } else { *right } as usize;
                }
                _ => unreachable!("only the nodes built above"),
            }
        };
        acc32[tree.group as usize] += value as f32;
        acc64[tree.group as usize] += value;
    }
    if !lgb {
        acc32.into_iter().map(f64::from).collect()
    } else {
        acc64
    }
}

#[test]
fn every_compiled_form_follows_the_rules() {
    let mut rng = Lcg(42);
    let mut forms = std::collections::BTreeSet::new();
    for semantics in [Semantics::XGBoost, Semantics::LightGBM, Semantics::Onnx] {
        for width in [1usize, 20, 33, 64, 65, 100, 1100] {
            for (depth, categorical) in [(0, false), (1, false), (3, false), (6, false), (11, false), (4, true)] {
                if categorical && semantics == Semantics::Onnx {
                    continue; // ONNX trees have no categorical splits
                }
                let groups = 1 + rng.below(3);
                let trees = (0..23)
                    .map(|t| tree(&mut rng, depth, width, semantics, (t % groups) as u32, categorical))
                    .collect();
                let spec = EnsembleSpec {
                    semantics,
                    n_features: width,
                    base_score: (0..groups).map(|g| g as f64 * 0.25).collect(),
                    link: Link::Identity,
                    average: false,
                    trees,
                };
                let model = Ensemble::new(spec.clone()).expect("valid");
                forms.insert(model.compiled_kind());
                for (rows, nan_rate) in [(1usize, 0.0), (8, 0.0), (37, 0.0), (37, 0.1), (300, 0.05)] {
                    let x: Vec<f64> = (0..rows * width)
                        .map(|_| {
                            let r = rng.next();
                            if r < nan_rate {
                                f64::NAN
                            } else if r < nan_rate + 0.05 {
                                0.0
                            } else if categorical && r < 0.4 {
                                (rng.below(40) as f64) - 2.0
                            } else {
                                rng.next() * 4.0 - 2.0
                            }
                        })
                        .collect();
                    let mut got = vec![0.0; rows * groups];
                    model.predict_raw(&x, width, &mut got).expect("shapes");
                    for r in 0..rows {
                        let want = reference(&spec, &x[r * width..(r + 1) * width]);
                        assert_eq!(
                            got[r * groups..(r + 1) * groups],
                            want[..],
                            "{semantics:?} width {width} depth {depth} categorical {categorical}: row {r} of {rows}"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(forms.into_iter().collect::<Vec<_>>(), ["general", "perfect"]);
}

/// The vector kernel (AVX-512, where this CPU has it) against the scalar walks and the rules,
/// bit for bit: every perfect-tree depth (the vector kernel takes up to 6, the deeper stay
/// scalar), narrow and wide rows, calls too small for it (one row), partial and several
/// 64-row chunks, one and several output groups, values equal to thresholds, missing values.
#[test]
fn vector_and_scalar_kernels_agree_bit_for_bit() {
    let mut rng = Lcg(7);
    let mut vector = false;
    for semantics in [Semantics::XGBoost, Semantics::LightGBM, Semantics::Onnx] {
        for width in [1usize, 20, 33, 1100] {
            for depth in 1..=10 {
                let groups = 1 + rng.below(3) * (depth % 2) as usize;
                let n_trees = [17, 40][depth as usize % 2];
                let trees =
                    (0..n_trees).map(|t| tree(&mut rng, depth, width, semantics, (t % groups) as u32, false)).collect();
                let spec = EnsembleSpec {
                    semantics,
                    n_features: width,
                    base_score: (0..groups).map(|g| g as f64 * 0.25).collect(),
                    link: Link::Identity,
                    average: false,
                    trees,
                };
                let fast = Ensemble::new(spec.clone()).expect("valid");
                let slow = Ensemble::new(spec.clone()).expect("valid").scalar_only();
                assert_eq!(fast.compiled_kind(), "perfect");
                assert!(!slow.vector_kernels());
                vector |= fast.vector_kernels();
                let thresholds = thresholds_and_zeros(&spec);
                for (rows, nan_rate) in [(1usize, 0.0), (1, 0.3), (16, 0.0), (53, 0.0), (53, 0.1), (300, 0.02)] {
                    let x: Vec<f64> = (0..rows * width)
                        .map(|_| {
                            let r = rng.next();
                            if r < nan_rate {
                                f64::NAN
                            } else if r < nan_rate + 0.2 {
                                // Exactly a threshold, or a zero of either sign: ties and LightGBM's zero rule.
                                thresholds[rng.below(thresholds.len())]
                            } else {
                                rng.next() * 4.0 - 2.0
                            }
                        })
                        .collect();
                    let (mut a, mut b) = (vec![0.0; rows * groups], vec![0.0; rows * groups]);
                    fast.predict_raw(&x, width, &mut a).expect("shapes");
                    slow.predict_raw(&x, width, &mut b).expect("shapes");
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    let context = format!("{semantics:?} width {width} depth {depth} rows {rows} NaN {nan_rate}");
                    assert_eq!(bits(&a), bits(&b), "{context}");
                    for r in [0, rows / 2, rows - 1] {
                        let want = reference(&spec, &x[r * width..(r + 1) * width]);
                        assert_eq!(bits(&a[r * groups..(r + 1) * groups]), bits(&want), "{context}: row {r}");
                    }
                    if rows == 1 {
                        let mut one = vec![0.0; groups];
                        fast.predict_row(&x, &mut one).expect("shapes");
                        assert_eq!(bits(&one), bits(&a), "{context}: predict_row");
                    }
                }
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        vector,
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw"),
        "the vector kernel scores where the CPU has it"
    );
}

/// The single-row vector kernel (AVX-512, where this CPU has it: perfect trees up to depth
/// 6 reading features 0–31) against the scalar walk and the rules, bit for bit, one row at
/// a time: every depth from 1 to 8 (deeper than 6 must walk), rows of 1, 20 and 33 features,
/// an odd and an even number of trees, more than one pass of trees, one and several groups,
/// values equal to thresholds, zeros of either sign, missing values; XGBoost's `<`, ONNX's
/// `<=` and LightGBM's `f64` `<=` by rank, with its missing types `NaN` and `None`.
#[test]
fn single_row_kernel_and_walk_agree_bit_for_bit() {
    let mut rng = Lcg(11);
    let mut used = false;
    for semantics in [Semantics::XGBoost, Semantics::Onnx, Semantics::LightGBM] {
        for width in [1usize, 20, 33] {
            for depth in 1..=8 {
                for n_trees in [1usize, 37, 300] {
                    let groups = 1 + rng.below(3);
                    let trees = (0..n_trees)
                        .map(|t| tree(&mut rng, depth, width, semantics, (t % groups) as u32, false))
                        .collect();
                    let spec = EnsembleSpec {
                        semantics,
                        n_features: width,
                        base_score: (0..groups).map(|g| g as f64 * 0.25 - 0.1).collect(),
                        link: Link::Identity,
                        average: false,
                        trees,
                    };
                    let fast = Ensemble::new(spec.clone()).expect("valid");
                    let slow = Ensemble::new(spec.clone()).expect("valid").scalar_only();
                    assert!(!slow.vector_row_kernel());
                    // `depth` bounds the trees' depth (past 6 they may still be shallower) and 33
                    // features bound the features read (they may all be below 32).
                    let context = format!("{semantics:?} width {width} depth {depth}");
                    if depth <= 6 && width <= 32 {
                        assert_eq!(fast.vector_row_kernel(), avx512(), "{context}");
                    }
                    used |= fast.vector_row_kernel();
                    let thresholds = thresholds_and_zeros(&spec);
                    for nan_rate in [0.0, 0.1, 0.5] {
                        for _ in 0..8 {
                            let row: Vec<f64> = (0..width)
                                .map(|_| {
                                    let r = rng.next();
                                    if r < nan_rate {
                                        f64::NAN
                                    } else if r < nan_rate + 0.3 {
                                        thresholds[rng.below(thresholds.len())]
                                    } else if r < nan_rate + 0.35 {
                                        [0.0, -0.0][rng.below(2)]
                                    } else {
                                        rng.next() * 4.0 - 2.0
                                    }
                                })
                                .collect();
                            let (mut a, mut b) = (vec![0.0; groups], vec![0.0; groups]);
                            fast.predict_row(&row, &mut a).expect("shapes");
                            slow.predict_row(&row, &mut b).expect("shapes");
                            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                            let context =
                                format!("{semantics:?} width {width} depth {depth} trees {n_trees} NaN {nan_rate}");
                            assert_eq!(bits(&a), bits(&b), "{context}: {row:?}");
                            assert_eq!(bits(&a), bits(&reference(&spec, &row)), "{context}: {row:?}");
                            let mut raw = vec![0.0; groups];
                            fast.predict_raw(&row, width, &mut raw).expect("shapes");
                            assert_eq!(bits(&raw), bits(&a), "{context}: predict_raw");
                        }
                    }
                }
            }
        }
    }
    assert_eq!(used, avx512(), "the single-row kernel scores where the CPU has it");
}

/// True when this CPU runs the vector kernels.
fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Every numeric threshold of `spec`'s trees, and both zeros: the values rows are drawn near,
/// so ties and signed zeros are scored.
fn thresholds_and_zeros(spec: &EnsembleSpec) -> Vec<f64> {
    spec.trees
        .iter()
        .flat_map(|t| &t.nodes)
        .filter_map(|n| match n {
            Node::Internal { split: Split::Numeric { threshold, .. }, .. } => Some(*threshold),
            _ => None,
        })
        .chain([0.0, -0.0])
        .collect()
}
