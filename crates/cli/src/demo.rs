//! `flightdeck demo`: simulated RAG requests, instrumented only through the
//! public API, so the output shows exactly what a user's service would get.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use flightdeck::obs::metrics::format_usd_micros;
use flightdeck::obs::names::{attr, span};
use flightdeck::obs::{CorrelationSource, ModelPrice, PriceTable};
use flightdeck::{CorrelationId, MetricsCollector, RequestScope};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use tracing::Instrument;
use tracing::field::Empty;

use crate::files::write_atomic;

const EMBED_MODEL: &str = "text-embedding-3-small";
const CHAT_MODEL: &str = "gpt-4o-mini";
const RERANK_MODEL: &str = "rerank-english-v3";
/// The reranker bills per search: $0.002.
const RERANK_COST_USD_MICROS: u64 = 2_000;
const SHARDS: u32 = 3;

/// Arguments of `flightdeck demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Number of simulated requests.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    requests: u32,
    /// Directory for traces.jsonl, logs.jsonl, dashboard.json and metrics.prom.
    #[arg(long, default_value_os_t = crate::default_out())]
    out: PathBuf,
    /// Seed for the simulated latencies, token counts and failures.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464) while running.
    #[arg(long, value_name = "ADDR")]
    prometheus_listen: Option<SocketAddr>,
    /// Keep serving /metrics this many seconds after the run (needs --prometheus-listen).
    #[arg(
        long,
        default_value_t = 0,
        value_name = "SECONDS",
        requires = "prometheus_listen"
    )]
    linger_secs: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Multiplies every simulated latency (1.0 is realistic, 0.1 runs ten times faster).
    #[arg(long, default_value_t = 1.0, value_parser = parse_time_scale, allow_negative_numbers = true)]
    time_scale: f64,
    /// A settings file (TOML). FLIGHTDECK_* and OTEL_* variables still apply on top.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Golden traces: record one case per request into DIR when it holds none,
    /// otherwise check this run against them (exit 3 on a difference).
    #[arg(long, value_name = "DIR")]
    golden: Option<PathBuf>,
    /// After the run, keep the reference service up on ADDR (default 127.0.0.1:8080) and print its live dashboard URL; Ctrl-C or SIGTERM stops it.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    serve: Option<SocketAddr>,
}

fn parse_time_scale(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= 100.0 {
        Ok(v)
    } else {
        Err(format!(
            "{s} is outside the allowed range (above 0, at most 100)"
        ))
    }
}

/// Everything random about one request, drawn up front from its own seeded
/// generator, so a request's plan does not depend on scheduling.
#[derive(Debug, Clone)]
struct Plan {
    index: u32,
    inbound_header: Option<Vec<u8>>,
    guard_in_ms: f64,
    block_prompt: bool,
    query_tokens: u64,
    embed_ms: f64,
    shard_ms: Vec<f64>,
    shard_timeout: Option<u32>,
    documents_per_shard: Vec<u32>,
    rerank_ms: f64,
    relevance: f64,
    generate_ms: f64,
    prompt_tokens: u64,
    output_tokens: u64,
    rate_limited: bool,
    guard_out_ms: f64,
    pii_rewrite: bool,
    rating: Option<u8>,
}

fn lognormal(rng: &mut StdRng, median_ms: f64, sigma: f64) -> f64 {
    LogNormal::new(median_ms.ln(), sigma).map_or(median_ms, |d| d.sample(rng))
}

impl Plan {
    fn draw(seed: u64, index: u32) -> Self {
        let mut rng =
            StdRng::seed_from_u64(seed ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let inbound_header = if index % 50 == 7 {
            // A hostile client: the value must be replaced, never echoed.
            Some(b"bad id\r\nX-Injected: yes".to_vec())
        } else if index.is_multiple_of(5) {
            Some(format!("client-{seed}-{index}").into_bytes())
        } else {
            None
        };
        Self {
            index,
            inbound_header,
            guard_in_ms: lognormal(&mut rng, 4.0, 0.3),
            block_prompt: rng.random_bool(0.02),
            query_tokens: rng.random_range(12..64),
            embed_ms: lognormal(&mut rng, 18.0, 0.35),
            shard_ms: (0..SHARDS)
                .map(|_| lognormal(&mut rng, 22.0, 0.5))
                .collect(),
            shard_timeout: rng.random_bool(0.015).then(|| rng.random_range(0..SHARDS)),
            documents_per_shard: (0..SHARDS).map(|_| rng.random_range(3..9)).collect(),
            rerank_ms: lognormal(&mut rng, 35.0, 0.4),
            relevance: (0.55 + 0.45 * rng.random::<f64>().powf(0.6)).min(1.0),
            generate_ms: lognormal(&mut rng, 280.0, 0.45),
            prompt_tokens: rng.random_range(800..2400),
            output_tokens: rng.random_range(80..420),
            rate_limited: rng.random_bool(0.015),
            guard_out_ms: lognormal(&mut rng, 5.0, 0.3),
            pii_rewrite: rng.random_bool(0.03),
            rating: rng.random_bool(0.3).then(|| {
                let r: f64 = rng.random();
                if r < 0.05 {
                    1
                } else if r < 0.12 {
                    2
                } else if r < 0.3 {
                    3
                } else if r < 0.65 {
                    4
                } else {
                    5
                }
            }),
        }
    }
}

#[derive(Debug, Clone)]
struct Sim {
    metrics: MetricsCollector,
    time_scale: f64,
    toolkit: Arc<Toolkit>,
}

/// The rest of the toolkit around the pipeline, as the reference service
/// wires it: the `reranker-v2` experiment (exposures and results for its
/// analysis), the `new_chunking_strategy` flag (killed mid-run), and the
/// default RAG SLOs fed by every request.
#[derive(Debug)]
struct Toolkit {
    reranker: flightdeck_service::Reranker,
    flags: flightdeck_service::Flags,
    slos: flightdeck::slo::SloRegistry,
    /// Requests with the flag on / evaluated, before and after the kill.
    chunking: [std::sync::atomic::AtomicU64; 4],
}

/// How much better the v2 cross-encoder ranks, in relevance (the demo's
/// ground truth, which the analysis should find).
const V2_RELEVANCE_GAIN: f64 = 0.06;

impl Sim {
    async fn sleep(&self, ms: f64) {
        tokio::time::sleep(Duration::from_secs_f64(ms * self.time_scale / 1e3)).await;
    }

    async fn guardrail(&self, name: &'static str, ms: f64, triggered: bool) -> bool {
        let s = tracing::info_span!(
            span::GUARDRAIL,
            { attr::RAG_GUARDRAIL_NAME } = name,
            { attr::RAG_GUARDRAIL_TRIGGERED } = Empty
        );
        let guard_span = s.clone();
        async move {
            let _t = self.metrics.time_operation(span::GUARDRAIL);
            self.sleep(ms).await;
            guard_span.record(attr::RAG_GUARDRAIL_TRIGGERED, triggered);
            if triggered {
                self.metrics.record_guardrail_trigger(name);
                tracing::warn!(target: "rag.guardrail", guardrail = name, "guardrail triggered");
            }
            triggered
        }
        .instrument(s)
        .await
    }

    async fn embed(&self, plan: &Plan) {
        let s = tracing::info_span!(
            span::EMBED,
            otel.kind = "client",
            { attr::GEN_AI_OPERATION_NAME } = "embeddings",
            { attr::GEN_AI_PROVIDER_NAME } = "openai",
            { attr::GEN_AI_REQUEST_MODEL } = EMBED_MODEL,
            { attr::GEN_AI_USAGE_INPUT_TOKENS } = plan.query_tokens,
            { attr::GEN_AI_EMBEDDINGS_DIMENSION_COUNT } = 1536,
        );
        async {
            let _t = self.metrics.time_operation(span::EMBED);
            self.sleep(plan.embed_ms).await;
            self.metrics
                .record_tokens(EMBED_MODEL, plan.query_tokens, 0);
            tracing::debug!(target: "rag.embedding", tokens = plan.query_tokens, "embedded query");
        }
        .instrument(s)
        .await;
    }

    async fn retrieve(&self, plan: &Plan) -> Result<u32, String> {
        let s = tracing::info_span!(
            span::RETRIEVE,
            { attr::RAG_RETRIEVAL_INDEX } = "docs-v3",
            { attr::RAG_RETRIEVAL_TOP_K } = 20,
            { attr::RAG_RETRIEVAL_DOCUMENTS } = Empty,
        );
        let retrieve_span = s.clone();
        async move {
            let mut timer = self.metrics.time_operation(span::RETRIEVE);
            // Fan out to the shards as separate tasks; each shard span's parent is
            // the retrieve span even though the tasks run on other threads.
            let tasks: Vec<_> = (0..SHARDS)
                .map(|shard| {
                    let sim = self.clone();
                    let ms = plan.shard_ms[shard as usize];
                    let docs = plan.documents_per_shard[shard as usize];
                    let timeout = plan.shard_timeout == Some(shard);
                    let shard_span = tracing::info_span!(
                        "rag.retrieve.shard",
                        { attr::RAG_RETRIEVAL_SHARD } = shard,
                        otel.kind = "client"
                    );
                    tokio::spawn(
                        async move {
                            if timeout {
                                sim.sleep(150.0).await;
                                tracing::error!(target: "rag.retrieval", shard, "shard search timed out after 150 ms");
                                return Err(format!("shard {shard} timed out"));
                            }
                            sim.sleep(ms).await;
                            Ok(docs)
                        }
                        .instrument(shard_span),
                    )
                })
                .collect();
            let mut total = 0;
            let mut failure = None;
            for task in tasks {
                match task.await {
                    Ok(Ok(docs)) => total += docs,
                    Ok(Err(e)) => failure = Some(e),
                    Err(e) => failure = Some(format!("shard task failed: {e}")),
                }
            }
            retrieve_span.record(attr::RAG_RETRIEVAL_DOCUMENTS, total);
            if let Some(e) = failure {
                timer.fail();
                tracing::error!(target: "rag.retrieval", error = %e, "retrieval failed");
                return Err(format!("retrieval failed: {e}"));
            }
            tracing::info!(target: "rag.retrieval", documents = total, "retrieved documents");
            Ok(total)
        }
        .instrument(s)
        .await
    }

    async fn rerank(&self, plan: &Plan, candidates: u32) {
        let kept = candidates.min(5);
        let s = tracing::info_span!(
            span::RERANK,
            otel.kind = "client",
            { attr::GEN_AI_REQUEST_MODEL } = RERANK_MODEL,
            { attr::RAG_RERANK_KEPT } = kept,
            { attr::RAG_RELEVANCE_SCORE } = plan.relevance,
        );
        async {
            let _t = self.metrics.time_operation(span::RERANK);
            self.sleep(plan.rerank_ms).await;
            self.metrics.record_call_cost(RERANK_MODEL, RERANK_COST_USD_MICROS);
            self.metrics.record_relevance(plan.relevance);
            tracing::info!(target: "rag.rerank", candidates, kept, relevance = plan.relevance, "reranked");
        }
        .instrument(s)
        .await;
    }

    async fn generate(&self, plan: &Plan) -> Result<(), String> {
        let s = tracing::info_span!(
            span::GENERATE,
            otel.kind = "client",
            { attr::GEN_AI_OPERATION_NAME } = "chat",
            { attr::GEN_AI_PROVIDER_NAME } = "openai",
            { attr::GEN_AI_REQUEST_MODEL } = CHAT_MODEL,
            { attr::GEN_AI_REQUEST_TEMPERATURE } = 0.2,
            { attr::GEN_AI_REQUEST_MAX_TOKENS } = 512,
            { attr::GEN_AI_RESPONSE_MODEL } = Empty,
            { attr::GEN_AI_USAGE_INPUT_TOKENS } = Empty,
            { attr::GEN_AI_USAGE_OUTPUT_TOKENS } = Empty,
            { attr::GEN_AI_RESPONSE_FINISH_REASONS } = Empty,
            { attr::FLIGHTDECK_COST_USD_MICROS } = Empty,
            { attr::ERROR_TYPE } = Empty,
        );
        let gen_span = s.clone();
        async move {
            let mut timer = self.metrics.time_operation(span::GENERATE);
            if plan.rate_limited {
                self.sleep(40.0).await;
                timer.fail();
                gen_span.record(attr::ERROR_TYPE, "rate_limited");
                tracing::error!(target: "rag.generation", model = CHAT_MODEL, status = 429, "model provider rate-limited the request");
                return Err("generation failed: rate limited (HTTP 429)".to_owned());
            }
            self.sleep(plan.generate_ms).await;
            let cost = self.metrics.record_tokens(CHAT_MODEL, plan.prompt_tokens, plan.output_tokens);
            gen_span.record(attr::GEN_AI_RESPONSE_MODEL, "gpt-4o-mini-2024-07-18");
            gen_span.record(attr::GEN_AI_USAGE_INPUT_TOKENS, plan.prompt_tokens);
            gen_span.record(attr::GEN_AI_USAGE_OUTPUT_TOKENS, plan.output_tokens);
            gen_span.record(attr::GEN_AI_RESPONSE_FINISH_REASONS, "[\"stop\"]");
            gen_span.record(attr::FLIGHTDECK_COST_USD_MICROS, cost);
            tracing::info!(
                target: "rag.generation",
                input_tokens = plan.prompt_tokens,
                output_tokens = plan.output_tokens,
                cost_usd = %format_usd_micros(cost),
                "generated answer"
            );
            Ok(())
        }
        .instrument(s)
        .await
    }

    async fn pipeline(&self, plan: Plan) -> Result<(), String> {
        if self
            .guardrail("prompt_injection", plan.guard_in_ms, plan.block_prompt)
            .await
        {
            return Err("blocked by the prompt_injection guardrail".to_owned());
        }
        self.embed(&plan).await;
        let candidates = self.retrieve(&plan).await?;
        self.rerank(&plan, candidates).await;
        self.generate(&plan).await?;
        self.guardrail("pii_filter", plan.guard_out_ms, plan.pii_rewrite)
            .await;
        if let Some(rating) = plan.rating {
            self.metrics.record_rating(rating);
            tracing::info!(target: "rag.feedback", rating, "user rated the answer");
        }
        Ok(())
    }

    async fn request(&self, mut plan: Plan) -> bool {
        use std::sync::atomic::Ordering;
        let (correlation_id, source) = CorrelationId::from_inbound(plan.inbound_header.as_deref());
        let index = plan.index;
        let user = format!("user-{index:05}");
        let assignment = self.toolkit.reranker.assign(&user);
        if assignment.variation_id == 1 {
            plan.relevance = (plan.relevance + V2_RELEVANCE_GAIN).min(1.0);
        }
        let killed = !self.toolkit.flags.manager.kills().is_empty();
        let (chunking_on, chunker) = self.toolkit.flags.chunker(&user);
        let slot = if killed { 2 } else { 0 };
        self.toolkit.chunking[slot].fetch_add(u64::from(chunking_on), Ordering::Relaxed);
        self.toolkit.chunking[slot + 1].fetch_add(1, Ordering::Relaxed);
        let relevance = plan.relevance;
        let started = Instant::now();
        let scope = RequestScope::start("answer", correlation_id);
        if source == CorrelationSource::Replaced {
            let len = plan.inbound_header.as_ref().map_or(0, Vec::len);
            scope.in_scope(|| {
                tracing::warn!(target: "rag.http", header_len = len, "replaced an invalid inbound x-request-id");
            });
        }
        scope.in_scope(|| {
            tracing::debug!(target: "rag.http", request = index, ?source, "accepted request");
            tracing::info!(target: "rag.http", user = %user, variation = %assignment.key, chunker, "assigned");
        });
        let mut timer = self.metrics.time_operation(span::REQUEST);
        let ok = scope.run(self.pipeline(plan)).await.is_ok();
        if !ok {
            timer.fail();
        }
        let elapsed = started.elapsed();
        let quality = ok.then_some(relevance);
        self.toolkit.slos.record_request(ok, elapsed, quality);
        self.toolkit
            .reranker
            .record(&user, &assignment, elapsed.as_secs_f64() * 1e3, quality, ok);
        ok
    }
}

fn default_prices() -> PriceTable {
    PriceTable::new()
        .with_model(EMBED_MODEL, ModelPrice::from_usd_per_mtok(0.02, 0.0))
        .with_model(CHAT_MODEL, ModelPrice::from_usd_per_mtok(0.15, 0.60))
}

/// Removes the previous run's file so the new one starts empty.
fn remove_stale(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot replace {}", path.display())),
    }
}

/// The settings (`--config`, `FLIGHTDECK_CONFIG`, the variables) with the
/// demo's files, every signal on, its version and default prices; and the
/// SLO settings.
fn demo_settings(
    config: Option<&Path>,
    traces: &Path,
    logs: &Path,
) -> anyhow::Result<(
    flightdeck::ObservabilitySettings,
    flightdeck::slo::SloSettings,
)> {
    let loaded = crate::files::load_settings(config)?;
    let slo_settings = loaded.slo;
    let mut settings = loaded.observability;
    remove_stale(traces)?;
    remove_stale(logs)?;
    crate::files::record_to(&mut settings, traces, logs);
    settings.metrics_enabled = true;
    if settings.service_version.is_none() {
        // The demo service is this binary.
        settings.service_version = Some(env!("CARGO_PKG_VERSION").to_owned());
    }
    if settings.prices.is_empty() {
        settings.prices = default_prices();
    }
    Ok((settings, slo_settings))
}

/// Sends the demo's requests through the simulated pipeline, `--concurrency`
/// at a time, killing the flag at `kill_at`; answers how many failed.
fn drive(
    args: &DemoArgs,
    sim: &Sim,
    toolkit: &Arc<Toolkit>,
    kill_at: u32,
    progress: &ProgressBar,
) -> anyhow::Result<u32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .thread_name("flightdeck-demo")
        .build()
        .context("cannot start the async runtime")?;
    let failures = runtime.block_on(async {
        let permits = Arc::new(tokio::sync::Semaphore::new(args.concurrency as usize));
        let mut tasks = Vec::with_capacity(args.requests as usize);
        for index in 0..args.requests {
            if index == kill_at && kill_at > 0 {
                // The kill drill: the flag goes off for everyone mid-run.
                let _ = toolkit.flags.manager.kill(
                    flightdeck_service::CHUNKING_FLAG,
                    "demo",
                    "mid-run kill drill",
                );
            }
            let permit = Arc::clone(&permits)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let sim = sim.clone();
            let progress = progress.clone();
            let mut plan = Plan::draw(args.seed, index);
            if args.golden.is_some() {
                // One stable case name per request, as a test harness sets.
                plan.inbound_header = Some(format!("golden-{index:05}").into_bytes());
            }
            tasks.push(tokio::spawn(async move {
                let ok = sim.request(plan).await;
                progress.inc(1);
                drop(permit);
                ok
            }));
        }
        let mut failures = 0u32;
        for t in tasks {
            if !t.await.unwrap_or(false) {
                failures += 1;
            }
        }
        failures
    });
    drop(runtime);
    Ok(failures)
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<()> {
    let out = &args.out;
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output directory --out {}", out.display()))?;
    let traces = out.join("traces.jsonl");
    let logs = out.join("logs.jsonl");
    let (settings, slo_settings) = demo_settings(args.config.as_deref(), &traces, &logs)?;

    for f in ["exposures.jsonl", "results.jsonl"] {
        remove_stale(&out.join(f))?;
    }
    let experiment_path = out.join("experiment.json");
    write_atomic(
        &experiment_path,
        &serde_json::to_vec_pretty(&flightdeck_service::reranker_definition())?,
    )?;
    let kill_at = args.requests / 2;
    let guard = flightdeck::init(settings.clone()).context("cannot set up observability")?;
    // After init, so the experiment's and flag's metrics reach the recorder.
    let toolkit = Arc::new(Toolkit {
        reranker: flightdeck_service::Reranker::new(Some(out)).map_err(anyhow::Error::msg)?,
        flags: flightdeck_service::Flags::new(None, Duration::from_secs(1))
            .map_err(anyhow::Error::msg)?,
        slos: flightdeck::slo::SloRegistry::rag_defaults(&slo_settings)
            .map_err(|e| crate::BadInput::new(e.to_string()))?,
        chunking: Default::default(),
    });

    let server = match (args.prometheus_listen, guard.prometheus()) {
        (Some(addr), Some(exposition)) => {
            Some(crate::serve::metrics_server(addr, exposition.clone())?)
        }
        _ => None,
    };
    if let Some(server) = &server {
        let mut err = std::io::stderr().lock();
        let _ = std::io::Write::write_fmt(
            &mut err,
            format_args!(
                "serving Prometheus metrics on http://{}/metrics\n",
                server.addr()
            ),
        );
    }

    let progress =
        ProgressBar::with_draw_target(Some(u64::from(args.requests)), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {bar:40} {pos}/{len} requests  {per_sec}  eta {eta}  {msg}",
        )
        .expect("the progress template is a valid constant"),
    );

    let sim = Sim {
        metrics: guard.metrics().clone(),
        time_scale: args.time_scale,
        toolkit: Arc::clone(&toolkit),
    };
    let started = Instant::now();
    let failures = drive(&args, &sim, &toolkit, kill_at, &progress)?;
    progress.finish_and_clear();
    let elapsed = started.elapsed();

    let dashboard = guard.dashboard();
    let exposition = guard.prometheus().map(|p| p.render()).unwrap_or_default();
    // What the service needs to keep recording after the files are closed.
    let live = (guard.metrics().clone(), guard.prometheus().cloned());
    let report = guard
        .shutdown(Duration::from_secs(30))
        .context("not every span and log line reached its file")?;

    let dashboard_path = out.join("dashboard.json");
    write_atomic(&dashboard_path, &serde_json::to_vec_pretty(&dashboard)?)?;
    let svg_path = out.join("dashboard.svg");
    write_atomic(&svg_path, dashboard.render_svg().as_bytes())?;
    let prom_path = out.join("metrics.prom");
    write_atomic(&prom_path, exposition.as_bytes())?;

    let mut stdout = std::io::stdout().lock();
    use std::io::Write as _;
    writeln!(stdout, "{}", dashboard.render_text())?;
    writeln!(
        stdout,
        "{} requests ({} failed) in {:.2}s; {} spans and {} log lines written",
        args.requests,
        failures,
        elapsed.as_secs_f64(),
        report.spans.written,
        report.logs.written
    )?;
    if let Some(otel) = &report.otel {
        if otel.undelivered() == 0 {
            writeln!(stdout, "{} spans exported over OTLP", otel.exported)?;
        } else {
            writeln!(
                stdout,
                "could not deliver {} of {} spans over OTLP ({} dropped from a full queue, {} in failed exports, {} discarded at the shutdown deadline); the local files are complete",
                otel.undelivered(),
                otel.ended,
                otel.dropped,
                otel.failed,
                otel.discarded()
            )?;
        }
    }
    toolkit.reranker.flush(Duration::from_secs(10));
    writeln!(stdout, "{}", toolkit_summary(&toolkit, kill_at))?;
    for (what, path) in [
        ("traces", &traces),
        ("logs", &logs),
        ("dashboard", &dashboard_path),
        ("picture", &svg_path),
        ("metrics", &prom_path),
        ("experiment", &experiment_path),
        ("exposures", &out.join("exposures.jsonl")),
        ("results", &out.join("results.jsonl")),
    ] {
        writeln!(stdout, "  {what:<10} {}", path.display())?;
    }
    drop(stdout);

    if let Some(server) = server {
        if args.linger_secs > 0 {
            std::thread::sleep(Duration::from_secs(args.linger_secs));
        }
        drop(server);
    }
    if report.spans.written == 0 {
        bail!("no spans were written to {}", traces.display());
    }
    if let Some(addr) = args.serve {
        serve_dashboard(addr, live, &slo_settings, args.time_scale)?;
    }
    match &args.golden {
        Some(dir) => golden_step(dir, &traces),
        None => Ok(()),
    }
}

/// Runs the reference service on `addr`, with the demo's metrics, until
/// Ctrl-C or SIGTERM, printing where its live dashboard is.
fn serve_dashboard(
    addr: SocketAddr,
    (metrics, exposition): (
        MetricsCollector,
        Option<flightdeck::obs::PrometheusExposition>,
    ),
    slo: &flightdeck::slo::SloSettings,
    time_scale: f64,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let token: String = {
        let mut rng = StdRng::from_os_rng();
        (0..16)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect()
    };
    let options = flightdeck_service::ServiceOptions {
        time_scale,
        admin_token: Some(token.clone()),
        ..flightdeck_service::ServiceOptions::default()
    };
    let service = flightdeck_service::Service::new(options, metrics, exposition, slo)
        .map_err(crate::BadInput::new)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("flightdeck-demo-serve")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on --serve {addr}"))?;
        let local = listener.local_addr()?;
        // Whoever reads this may stop reading: a closed pipe must not stop
        // the service.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "\nthe service answers POST http://{local}/v1/answer; admin token {token} (kill buttons); Ctrl-C stops it"
        );
        let _ = writeln!(out, "dashboard: http://{local}/dashboard");
        let _ = out.flush();
        drop(out);
        flightdeck_service::serve(
            service,
            listener,
            flightdeck_service::shutdown_signal(),
            Duration::from_secs(10),
        )
        .await
        .context("the service stopped")
    })
}

/// The experiment's analysis, the flag before and after its kill, and the
/// SLOs, in words.
fn toolkit_summary(t: &Toolkit, kill_at: u32) -> String {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering;
    let mut out = String::from("\n");
    match t.reranker.analyze() {
        Some(a) => out.push_str(&flightdeck::experiments::analysis::render_text(&a)),
        None => out.push_str("experiment reranker-v2: no results\n"),
    }
    let share = |on: usize| {
        let (n_on, n) = (
            t.chunking[on].load(Ordering::Relaxed),
            t.chunking[on + 1].load(Ordering::Relaxed),
        );
        if n == 0 {
            "no requests".to_owned()
        } else {
            format!(
                "on for {:.0}% of {n} requests",
                100.0 * n_on as f64 / n as f64
            )
        }
    };
    let _ = writeln!(
        out,
        "\nflag {}: {} before the kill at request {kill_at}, {} after",
        flightdeck_service::CHUNKING_FLAG,
        share(0),
        share(2)
    );
    let _ = writeln!(out, "\nSLOs (default RAG set):");
    for st in t.slos.dashboard().slos {
        let _ = writeln!(
            out,
            "  {:<14} {:<11} SLI {:>8}  objective {:>7.3}%  budget left {:>7.1}%",
            st.name,
            if st.compliant { "ok" } else { "NOT MET" },
            st.sli
                .map_or_else(|| "-".to_owned(), |v| format!("{:.4}", v)),
            st.objective * 100.0,
            st.error_budget_remaining * 100.0
        );
    }
    out
}

/// Records this run as golden cases, or checks it against them.
fn golden_step(dir: &Path, traces: &Path) -> anyhow::Result<()> {
    use flightdeck::golden::{CaseKey, Checker, Recorder, Store};
    let store = Store::new(dir);
    let cases = store.load()?;
    let mut stdout = std::io::stdout().lock();
    use std::io::Write as _;
    if cases.is_empty() {
        let mut rec = Recorder::new(CaseKey::CorrelationId, 1);
        crate::golden::for_each_trace(traces, |t| Ok(rec.add(t)?))?;
        let (cases, _) = rec.finish();
        for case in &cases {
            store.write(case)?;
        }
        writeln!(
            stdout,
            "recorded {} golden case(s) in {}; run the demo again with --golden to check against them",
            cases.len(),
            dir.display()
        )?;
        return Ok(());
    }
    let spec = crate::golden::spec_for(dir)?;
    let mut checker = Checker::new(&cases, &spec, CaseKey::CorrelationId);
    crate::golden::for_each_trace(traces, |t| Ok(checker.add(t)?))?;
    let report = checker.finish();
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none();
    write!(stdout, "{}", crate::golden::render(&report, colour))?;
    if report.ok() {
        Ok(())
    } else {
        Err(crate::Finding.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_reproducible_from_the_seed() {
        let a = Plan::draw(7, 3);
        let b = Plan::draw(7, 3);
        assert_eq!(a.generate_ms, b.generate_ms);
        assert_eq!(a.prompt_tokens, b.prompt_tokens);
        assert_ne!(Plan::draw(8, 3).generate_ms, a.generate_ms);
    }

    #[test]
    fn time_scale_is_validated() {
        assert!(parse_time_scale("0.5").is_ok());
        assert!(parse_time_scale("0").unwrap_err().contains("outside"));
        assert!(
            parse_time_scale("fast")
                .unwrap_err()
                .contains("not a number")
        );
    }
}
