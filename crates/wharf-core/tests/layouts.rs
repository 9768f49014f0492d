//! A borrowed matrix scores exactly as the owned row-major one, whatever its strides: the
//! Python binding lends NumPy arrays and pandas blocks (column-major) without copying them,
//! so every kernel reading `Records::Matrix` must give the same bits from any layout.

use ndarray::{aview1, s, Array2, ShapeBuilder};
use wharf_core::{score, Column, ModelServers, OnError, Records, Scored};
use wharf_ml::{datasets, Dataset, Trainer};

/// The dataset's features as a row-major matrix in signature order, a few cells missing.
fn matrix(data: &Dataset, model: &wharf_core::Model) -> Array2<f64> {
    let features = &model.signature().features;
    let mut m = Array2::zeros((data.n_rows(), features.len()));
    for (j, feature) in features.iter().enumerate() {
        let Some(Column::Numeric(values)) = data.features.column(&feature.name) else {
            panic!("{} is not numeric", feature.name)
        };
        m.column_mut(j).assign(&aview1(values));
    }
    for i in (0..m.nrows()).step_by(37) {
        m[[i, i % features.len()]] = f64::NAN;
    }
    m
}

fn bits(scored: &Scored) -> (Vec<u64>, String) {
    let p = scored.probabilities.as_ref().map(|p| p.values.iter().map(|v| v.to_bits()).collect()).unwrap_or_default();
    (p, format!("{:?}", scored.predictions))
}

#[test]
fn column_major_and_strided_views_score_bit_for_bit_like_the_owned_matrix() {
    let cases = [
        ("logistic, binary (the folded kernel)", Trainer::logistic_regression(), datasets::breast_cancer()),
        ("logistic, multinomial", Trainer::logistic_regression(), datasets::iris()),
        ("random forest (perfect trees)", Trainer::random_forest(), datasets::breast_cancer()),
        ("decision tree", Trainer::decision_tree(), datasets::iris()),
        ("gradient boosting (a tree ensemble)", Trainer::gradient_boosting().trees(10), datasets::breast_cancer()),
        ("linear regression", Trainer::linear_regression(), datasets::diabetes()),
        ("k-means", Trainer::kmeans(3), datasets::iris()),
    ];
    for (name, trainer, data) in cases {
        let model = trainer.fit(&data).expect("fit");
        let owned = matrix(&data, &model);
        let server = ModelServers::local().serve(model).expect("serve");
        let want = score(server.as_ref(), &Records::Matrix(owned.clone().into()), OnError::Fail).expect(name);

        let mut column_major = Array2::zeros(owned.raw_dim().f());
        column_major.assign(&owned);
        let mut tall = Array2::from_elem((2 * owned.nrows(), owned.ncols()), f64::NAN);
        tall.slice_mut(s![..;2, ..]).assign(&owned);
        let views = [("column-major", column_major.view()), ("every other row", tall.slice(s![..;2, ..]))];
        for (layout, view) in views {
            assert!(view.as_slice().is_none(), "{layout}: not one row-major slice, so the strided path runs");
            let got = score(server.as_ref(), &Records::from(view), OnError::Fail).expect(name);
            assert_eq!(got.kept, want.kept, "{name}, {layout}");
            assert!(bits(&got) == bits(&want), "{name}, {layout}: the scores differ");
        }
    }
}
