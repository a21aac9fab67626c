//! Evaluation through the OpenFeature client API (`open-feature` 0.3).

use std::sync::Arc;

use flightdeck_flags::{FeatureFlagManager, FlagSet, FlightdeckProvider};
use open_feature::{EvaluationContext, EvaluationErrorCode, EvaluationReason, OpenFeature};

const FLAGS: &str = r#"
flags:
  - id: dark-mode
  - id: beta-only
    targeting:
      attributes: {plan: beta}
  - id: half
    rollout_percentage: 50
  - id: ranker
    default: bm25
    variants:
      - {key: bm25, value: "bm25"}
      - {key: colbert, value: "colbert"}
  - id: limits
    default: small
    variants:
      - {key: small, value: {"max_tokens": 512}, weight: 0}
      - {key: large, value: {"max_tokens": 4096}, weight: 1}
  - id: k
    default: five
    variants:
      - {key: five, value: 5, weight: 1}
      - {key: ten, value: 10, weight: 0}
  - id: disabled
    enabled: false
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_evaluate_through_the_openfeature_client() {
    let manager = Arc::new(FeatureFlagManager::with_flags(
        FlagSet::parse("f.yaml", FLAGS, None).unwrap(),
    ));
    let mut api = OpenFeature::singleton_mut().await;
    api.set_provider(FlightdeckProvider::new(manager.clone()))
        .await;
    let client = api.create_client();
    drop(api);

    let user = EvaluationContext::default().with_targeting_key("user-1");
    let beta = EvaluationContext::default()
        .with_targeting_key("user-2")
        .with_custom_field("plan", "beta");

    let d = client
        .get_bool_details("dark-mode", Some(&user), None)
        .await
        .unwrap();
    assert!(d.value);
    assert_eq!(d.reason, Some(EvaluationReason::TargetingMatch));

    let d = client
        .get_bool_details("beta-only", Some(&beta), None)
        .await
        .unwrap();
    assert_eq!(
        (d.value, d.reason),
        (true, Some(EvaluationReason::TargetingMatch))
    );
    let d = client
        .get_bool_details("beta-only", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(
        (d.value, d.reason),
        (false, Some(EvaluationReason::Default))
    );

    let d = client
        .get_string_details("ranker", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(d.reason, Some(EvaluationReason::Split));
    assert_eq!(d.variant.as_deref(), Some(d.value.as_str()));

    let d = client
        .get_int_details("k", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(d.value, 5);
    let d = client
        .get_float_details("k", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(d.value, 5.0);

    let s = client
        .get_struct_details::<open_feature::StructValue>("limits", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(s.value.fields["max_tokens"], open_feature::Value::Int(4096));

    let d = client
        .get_bool_details("disabled", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(
        (d.value, d.reason),
        (false, Some(EvaluationReason::Disabled))
    );

    manager.kill("dark-mode", "oncall", "incident 42").unwrap();
    let d = client
        .get_bool_details("dark-mode", Some(&user), None)
        .await
        .unwrap();
    assert_eq!(
        (d.value, d.reason),
        (false, Some(EvaluationReason::Disabled))
    );

    // Errors: the client returns the caller's default with the error code.
    let e = client
        .get_bool_details("missing", Some(&user), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::FlagNotFound);
    assert!(
        !client
            .get_bool_value("missing", Some(&user), None)
            .await
            .unwrap_or(false)
    );
    let e = client
        .get_bool_details("ranker", Some(&user), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TypeMismatch);
    let e = client
        .get_int_details("ranker", Some(&user), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::TypeMismatch);

    // Split: about half on through the client too.
    let mut on = 0;
    for i in 0..2000 {
        let ctx = EvaluationContext::default().with_targeting_key(format!("u{i}"));
        if client
            .get_bool_value("half", Some(&ctx), None)
            .await
            .unwrap()
        {
            on += 1;
        }
    }
    assert!((850..1150).contains(&on), "{on}");

    // Not ready: a provider over an empty manager.
    let mut api = OpenFeature::singleton_mut().await;
    api.set_named_provider(
        "empty",
        FlightdeckProvider::new(Arc::new(FeatureFlagManager::new())),
    )
    .await;
    let empty = api.create_named_client("empty");
    drop(api);
    let e = empty
        .get_bool_details("dark-mode", Some(&user), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, EvaluationErrorCode::ProviderNotReady);
}
