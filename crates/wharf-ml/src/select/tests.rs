//! In-crate checks that need the fitted preprocessing (which is not public).

use wharf_core::Column;

use super::cv::{fit_folds, plan};
use super::Folds;
use crate::preprocess::Step;
use crate::{datasets, FittedEstimator, Trainer};

fn mean_of(values: &[f64], rows: &[usize]) -> f64 {
    rows.iter().map(|&i| values[i]).sum::<f64>() / rows.len() as f64
}

#[test]
fn each_folds_scaler_is_fitted_on_its_training_part_only() {
    let data = datasets::breast_cancer();
    let trainer = Trainer::logistic_regression();
    let splits = plan(&trainer, &data, &Folds::stratified(5).seed(7)).unwrap();
    let fitted = fit_folds(&trainer, &data, &splits).unwrap();
    let (name, column) = &data.features.columns()[0];
    let Column::Numeric(values) = column else { panic!("{name} is numeric") };
    let whole = mean_of(values, &(0..values.len()).collect::<Vec<_>>());
    for (split, (model, _)) in splits.iter().zip(&fitted) {
        let estimator = model.kind().as_any().downcast_ref::<FittedEstimator>().expect("a built-in estimator");
        let Step::Scale { mean, .. } = estimator.preprocessor.steps[0] else { panic!("first step scales") };
        let train_mean = mean_of(values, &split.train);
        assert!((mean - train_mean).abs() < 1e-9, "fold scaler mean {mean} is the training part's {train_mean}");
        assert!((mean - whole).abs() > 1e-9, "fold scaler mean {mean} must not be the whole table's {whole}");
        assert_eq!(model.metadata().data_fingerprint, data.take(&split.train, "train").fingerprint());
    }
}
