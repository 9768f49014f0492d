//! `wharf_predict` and `wharf_predict_proba` as DataFusion scalar functions.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{new_empty_array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{
    exec_datafusion_err, exec_err, internal_err, plan_datafusion_err, plan_err, Result, ScalarValue,
};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use wharf_core::{Model, ModelRef, ModelServerPort, OnError, Task};

use crate::input::{accepts, model_input, prediction_column, probability_column, probability_fields};
use crate::models::{outside_runtime, ModelCache};

/// What a function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Output {
    /// `wharf_predict`: a label, a value or a cluster index.
    Prediction,
    /// `wharf_predict_proba`: a struct of class probabilities.
    Probabilities,
}

impl Output {
    pub(crate) fn function_name(self) -> &'static str {
        match self {
            Output::Prediction => "wharf_predict",
            Output::Probabilities => "wharf_predict_proba",
        }
    }
}

/// One scoring function. The model is the first argument, a text literal (`'lead'`,
/// `'lead@champion'`, `'lead@3'`); the rest are the model's features in signature order.
///
/// The signature accepts anything so that the checks happen in
/// [`return_field_from_args`](ScalarUDFImpl::return_field_from_args), where the literal model
/// reference is visible: that is what lets a wrong arity or type fail at plan time with the
/// model's own feature names, before any file is read.
#[derive(Debug)]
pub(crate) struct ScoringFunction {
    output: Output,
    models: Arc<ModelCache>,
    signature: Signature,
}

impl ScoringFunction {
    pub(crate) fn new(output: Output, models: Arc<ModelCache>) -> Self {
        // Immutable: within a session a reference always means the same cached model.
        ScoringFunction { output, models, signature: Signature::variadic_any(Volatility::Immutable) }
    }

    fn name(&self) -> &'static str {
        self.output.function_name()
    }

    /// The model a reference literal names (and the server holding it), or a plan error
    /// saying what is wrong with it.
    fn model(&self, reference: Option<&ScalarValue>) -> Result<(String, Arc<Model>, Arc<dyn ModelServerPort>)> {
        let name = self.name();
        let text = match reference {
            Some(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => s,
            _ => {
                return plan_err!(
                "{name}: the first argument must be the model as a text literal, like '{name}('lead@champion', ...)'"
            )
            }
        };
        let reference: ModelRef =
            text.parse().map_err(|e| plan_datafusion_err!("{name}: '{text}' is not a model reference: {e}"))?;
        let server = self.models.get(&reference).map_err(|e| plan_datafusion_err!("{name}('{text}'): {e}"))?;
        let model = server.model().ok_or_else(|| plan_datafusion_err!("{name}('{text}'): no model loaded"))?;
        Ok((format!("{name}('{text}')"), model, server))
    }

    /// The Arrow type this function returns for `model`.
    fn output_type(&self, call: &str, model: &Model) -> Result<DataType> {
        match (self.output, model.task()) {
            (Output::Prediction, Task::Classification) => Ok(DataType::Utf8),
            (Output::Prediction, Task::Regression) => Ok(DataType::Float64),
            (Output::Prediction, Task::Clustering) => Ok(DataType::UInt32),
            (Output::Prediction, task) => plan_err!("{call}: SQL scoring does not support {task} models yet"),
            (Output::Probabilities, Task::Classification) => Ok(DataType::Struct(probability_fields(model.classes()))),
            (Output::Probabilities, task) => plan_err!(
                "{call}: probabilities need a classifier, and this is a {task} model ({}); use wharf_predict",
                model.metadata().algorithm
            ),
        }
    }
}

impl PartialEq for ScoringFunction {
    /// Two functions are equal when they return the same thing from the same model cache:
    /// then they answer every call identically.
    fn eq(&self, other: &Self) -> bool {
        self.output == other.output && Arc::ptr_eq(&self.models, &other.models)
    }
}

impl Eq for ScoringFunction {}

impl Hash for ScoringFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.output.hash(state);
        std::ptr::hash(Arc::as_ptr(&self.models), state);
    }
}

impl ScalarUDFImpl for ScoringFunction {
    fn name(&self) -> &str {
        self.output.function_name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        internal_err!("{}: the return type depends on the model; DataFusion asks return_field_from_args", self.name())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let (call, model, _) = self.model(args.scalar_arguments.first().copied().flatten())?;
        let features = &model.signature().features;
        let given = args.arg_fields.get(1..).unwrap_or_default();
        if given.len() != features.len() {
            let names: Vec<&str> = model.signature().feature_names().collect();
            return plan_err!(
                "{call}: the model takes {} features ({}), got {}",
                features.len(),
                names.join(", "),
                given.len()
            );
        }
        for (j, (feature, field)) in features.iter().zip(given).enumerate() {
            if !accepts(feature, field.data_type()) {
                let wanted = if feature.is_numeric() { "a number" } else { "text (a categorical level)" };
                return plan_err!(
                    "{call}: argument {} (feature '{}') must be {wanted}, got {} (column '{}')",
                    j + 2,
                    feature.name,
                    field.data_type(),
                    field.name()
                );
            }
        }
        Ok(Arc::new(Field::new(self.name(), self.output_type(&call, &model)?, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ScalarFunctionArgs { args, number_rows, return_field, .. } = args;
        let reference = match args.first() {
            Some(ColumnarValue::Scalar(value)) => Some(value),
            _ => None,
        };
        let (call, model, server) =
            self.model(reference).map_err(|e| exec_datafusion_err!("{}", e.strip_backtrace()))?;
        // A different model under the same reference (a refresh between planning and
        // execution, or an executor that resolved an alias later) must not be scored into the
        // planned type.
        let planned = self.output_type(&call, &model)?;
        if planned != *return_field.data_type() {
            return exec_err!(
                "{call}: the model changed since the query was planned (it now returns {planned}, the plan \
                 expects {}); run the query again",
                return_field.data_type()
            );
        }
        if number_rows == 0 {
            return Ok(ColumnarValue::Array(new_empty_array(&planned)));
        }
        let columns = args
            .get(1..)
            .unwrap_or_default()
            .iter()
            .map(|arg| arg.to_array(number_rows))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let input = model_input(&call, &model, &columns, number_rows)?;
        // The one scoring path. A row the model refuses fails the query (SQL has no reject
        // file); a remote server is called off the runtime, as its client blocks.
        let score = || wharf_core::score(server.as_ref(), &input.records, OnError::Fail);
        let scored = if server.capabilities().in_process { score() } else { outside_runtime(server.name(), score) };
        let scored = scored.map_err(|e| exec_datafusion_err!("{call}: {e}"))?;
        let array = match self.output {
            Output::Prediction => prediction_column(&call, scored.predictions, input.nulls)?,
            Output::Probabilities => match scored.probabilities {
                Some(probabilities) => probability_column(&call, probabilities, input.nulls)?,
                None => return exec_err!("{call}: the model server '{}' gives no probabilities", server.name()),
            },
        };
        if array.len() != number_rows {
            return exec_err!("{call}: the model answered {} rows for {number_rows}", array.len());
        }
        Ok(ColumnarValue::Array(array))
    }
}
