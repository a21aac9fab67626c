//! An OpenFeature provider (`open-feature` 0.3), so services can evaluate
//! flags through the standard client.
//!
//! | our source | OpenFeature reason |
//! |---|---|
//! | `force` | `TARGETING_MATCH` |
//! | `experiment` | `SPLIT` |
//! | `defaultValue` (flag with rules) | `DEFAULT` |
//! | `defaultValue` (flag without rules) | `STATIC` |
//! | `disabled`, `killSwitch` | `DISABLED` |
//! | `prerequisite` | `DEFAULT` (the gate's null value becomes the caller's default) |
//! | `cyclicPrerequisite` | `ERROR` (general error `cyclic prerequisite`) |
//! | `unknownFeature` | error `FLAG_NOT_FOUND` |
//!
//! A value of the wrong type is `TYPE_MISMATCH`; before any configuration is
//! loaded the error is `PROVIDER_NOT_READY`, or `PARSE_ERROR` when the
//! source's configuration failed to parse. The targeting key is the `id`
//! attribute (the hash attribute).

use std::collections::HashMap;
use std::sync::Arc;

use flightdeck_experiments::{Context, FeatureSource};
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, EvaluationResult, FlagMetadata, StructValue, Value as OfValue,
};
use serde_json::{Map, Value};

use crate::manager::{Decision, FeatureFlagManager};

/// The provider: wraps a [`FeatureFlagManager`].
#[derive(Debug, Clone)]
pub struct FlightdeckProvider {
    manager: Arc<FeatureFlagManager>,
    metadata: ProviderMetadata,
}

impl FlightdeckProvider {
    /// A provider named `flightdeck` over `manager`.
    pub fn new(manager: Arc<FeatureFlagManager>) -> Self {
        Self {
            manager,
            metadata: ProviderMetadata::new("flightdeck"),
        }
    }
}

/// Our context from OpenFeature's: the targeting key becomes `id`; other
/// fields keep their names (date-times as RFC 3339 text; structs that hold a
/// `serde_json::Value` are used as they are, other structs are skipped).
pub fn context_from_openfeature(ctx: &EvaluationContext) -> Context {
    let mut attrs = Map::new();
    for (k, v) in &ctx.custom_fields {
        let value = match v {
            EvaluationContextFieldValue::Bool(b) => Value::Bool(*b),
            EvaluationContextFieldValue::Int(i) => Value::from(*i),
            EvaluationContextFieldValue::Float(f) => Value::from(*f),
            EvaluationContextFieldValue::String(s) => Value::from(s.as_str()),
            EvaluationContextFieldValue::DateTime(t) => {
                match t.format(&time::format_description::well_known::Rfc3339) {
                    Ok(s) => Value::from(s),
                    Err(_) => continue,
                }
            }
            EvaluationContextFieldValue::Struct(s) => match s.downcast_ref::<Value>() {
                Some(v) => v.clone(),
                None => continue,
            },
        };
        attrs.insert(k.clone(), value);
    }
    if let Some(key) = &ctx.targeting_key {
        attrs.insert("id".into(), Value::from(key.as_str()));
    }
    Context::new(Value::Object(attrs))
}

fn error(code: EvaluationErrorCode, message: impl Into<String>) -> EvaluationError {
    EvaluationError::builder()
        .code(code)
        .message(message.into())
        .build()
}

fn to_of_value(v: &Value) -> OfValue {
    match v {
        Value::Null => OfValue::String(String::new()),
        Value::Bool(b) => OfValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => OfValue::Int(i),
            None => OfValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => OfValue::String(s.clone()),
        Value::Array(a) => OfValue::Array(a.iter().map(to_of_value).collect()),
        Value::Object(m) => OfValue::Struct(StructValue {
            fields: m
                .iter()
                .map(|(k, v)| (k.clone(), to_of_value(v)))
                .collect::<HashMap<_, _>>(),
        }),
    }
}

impl FlightdeckProvider {
    fn resolve<T>(
        &self,
        flag: &str,
        ctx: &EvaluationContext,
        convert: impl FnOnce(&Value) -> Option<T>,
        type_name: &str,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        if !self.manager.is_ready() {
            return Err(match self.manager.health().last_error() {
                Some(e) => error(EvaluationErrorCode::ParseError, e),
                None => error(EvaluationErrorCode::ProviderNotReady, "no flags loaded yet"),
            });
        }
        let ours = context_from_openfeature(ctx);
        self.manager.decide(flag, &ours, |d: Decision<'_>| {
            let reason = match d.source {
                FeatureSource::UnknownFeature => {
                    return Err(error(
                        EvaluationErrorCode::FlagNotFound,
                        format!("unknown flag {flag:?}"),
                    ));
                }
                FeatureSource::CyclicPrerequisite => {
                    return Err(error(
                        EvaluationErrorCode::General("cyclic prerequisite".into()),
                        format!("flag {flag:?} has cyclic prerequisites"),
                    ));
                }
                FeatureSource::Force => EvaluationReason::TargetingMatch,
                FeatureSource::Experiment => EvaluationReason::Split,
                FeatureSource::DefaultValue if d.rules == 0 => EvaluationReason::Static,
                FeatureSource::DefaultValue | FeatureSource::Prerequisite => {
                    EvaluationReason::Default
                }
                FeatureSource::Disabled | FeatureSource::KillSwitch => EvaluationReason::Disabled,
            };
            let Some(value) = convert(d.value) else {
                if d.value.is_null() {
                    // A failed gate serves null: the caller's default applies.
                    return Err(error(
                        EvaluationErrorCode::General("prerequisite".into()),
                        format!("flag {flag:?} is off because a prerequisite is off"),
                    ));
                }
                return Err(error(
                    EvaluationErrorCode::TypeMismatch,
                    format!(
                        "flag {flag:?} is {} but {type_name} was asked for",
                        kind_name(d.value)
                    ),
                ));
            };
            let variant = d
                .result
                .map_or_else(|| d.source.as_str().to_owned(), |r| r.key.to_owned());
            let mut meta = FlagMetadata::default()
                .with_value("source", d.source.as_str())
                .with_value("rule_id", d.rule_id);
            if d.stale {
                meta.add_value("stale", true);
            }
            if let Some(k) = d.kill {
                meta.add_value("killed_by", k.actor.as_str());
                meta.add_value("kill_reason", k.reason.as_str());
            }
            Ok(ResolutionDetails::builder()
                .value(value)
                .variant(variant)
                .reason(reason)
                .flag_metadata(meta)
                .build())
        })
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[async_trait::async_trait]
impl FeatureProvider for FlightdeckProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    fn status(&self) -> ProviderStatus {
        if !self.manager.is_ready() {
            ProviderStatus::NotReady
        } else if self.manager.health().is_stale() {
            ProviderStatus::STALE
        } else {
            ProviderStatus::Ready
        }
    }

    async fn resolve_bool_value(
        &self,
        flag: &str,
        ctx: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve(flag, ctx, Value::as_bool, "a boolean")
    }

    async fn resolve_int_value(
        &self,
        flag: &str,
        ctx: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        self.resolve(flag, ctx, Value::as_i64, "an integer")
    }

    async fn resolve_float_value(
        &self,
        flag: &str,
        ctx: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        self.resolve(flag, ctx, Value::as_f64, "a number")
    }

    async fn resolve_string_value(
        &self,
        flag: &str,
        ctx: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        self.resolve(flag, ctx, |v| v.as_str().map(str::to_owned), "a string")
    }

    async fn resolve_struct_value(
        &self,
        flag: &str,
        ctx: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        self.resolve(
            flag,
            ctx,
            |v| match to_of_value(v) {
                OfValue::Struct(s) if v.is_object() => Some(s),
                _ => None,
            },
            "an object",
        )
    }
}
