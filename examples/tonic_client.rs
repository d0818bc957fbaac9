//! A tonic client `Channel` with a timeout per attempt, retry (the gRPC
//! preset) and a circuit breaker, calling a local tonic server (the standard
//! gRPC health service, so no `protoc` is needed) that fails on purpose: the
//! breaker opens, callers get an immediate `UNAVAILABLE`, and after the
//! outage probes close the breaker again. Runs for about 3 seconds.
//!
//! Run with `cargo run --example tonic_client --features grpc`.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use palisade::{
    circuit_breaker::{CircuitBreakerLayer, HalfOpen, OpenDuration},
    classify::GrpcErrorsAsFailures,
    retry::{
        Backoff, RetryLayer,
        body::{BufferBodyLayer, ReplayBody, ReplayRequests},
        http::GrpcRetry,
    },
    stack::{ResilienceLayer, http::HttpAnswerLayer},
    timeout::TimeoutLayer,
};
use tonic::{
    Request, Response, Status,
    codegen::tokio_stream,
    transport::{Channel, Server, server::TcpIncoming},
};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse,
    health_check_response::ServingStatus,
    health_client::HealthClient,
    health_server::{Health, HealthServer},
};
use tower::{BoxError, ServiceBuilder};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = Flaky::default();
    let addr = serve(server.clone()).await?;

    let breaker = CircuitBreakerLayer::builder()
        .name("health")
        .classifier(GrpcErrorsAsFailures::new())
        .consecutive_failures(4)
        .open_duration(OpenDuration::fixed(Duration::from_secs(1)))
        .half_open(HalfOpen::new().probes(2))
        .build()?;
    let state = breaker.handle();
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let stack = ServiceBuilder::new()
        // Refusals as gRPC statuses: the client sees UNAVAILABLE when the
        // breaker is open, DEADLINE_EXCEEDED when an attempt times out.
        .layer(HttpAnswerLayer::grpc())
        // Unary request bodies are small: keep them to send again.
        .layer(BufferBodyLayer::new(16 * 1024))
        .layer(
            ResilienceLayer::new()
                .retry(
                    RetryLayer::builder()
                        .name("health")
                        .policy(GrpcRetry::new())
                        .clone_request(ReplayRequests)
                        .max_attempts(2)
                        .backoff(Backoff::constant(Duration::from_millis(20)))
                        .build()?,
                )
                .circuit_breaker(breaker)
                .timeout(
                    TimeoutLayer::builder(Duration::from_millis(500))
                        .name("health")
                        .build()?,
                ),
        )
        .map_request(|request: http::Request<ReplayBody<tonic::body::Body>>| {
            request.map(tonic::body::Body::new)
        })
        .service(channel);
    let mut client = HealthClient::new(stack);

    println!("server healthy");
    for call in 1..=2 {
        check(&mut client, call, &server).await;
    }
    println!("\nserver fails every call with UNAVAILABLE; each call is tried twice");
    server.failing.store(true, Ordering::SeqCst);
    for call in 3..=6 {
        check(&mut client, call, &server).await;
    }
    println!("  breaker: {}", state.state());

    println!("\nserver recovers; after the 1 s open time two probes close the breaker");
    server.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for call in 7..=8 {
        check(&mut client, call, &server).await;
        println!("  breaker: {}", state.state());
    }
    Ok(())
}

/// One health check; prints its status and how many calls reached the
/// server.
async fn check<T>(client: &mut HealthClient<T>, call: u32, server: &Flaky)
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<BoxError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
{
    let before = server.calls.load(Ordering::SeqCst);
    let answer = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    let reached = server.calls.load(Ordering::SeqCst) - before;
    let outcome = match answer {
        Ok(response) => format!("{:?}", response.into_inner().status()),
        Err(status) => format!("{:?}: {}", status.code(), status.message()),
    };
    println!("  call {call}: {outcome:<60} ({reached} reached the server)");
}

/// A health service that answers UNAVAILABLE while `failing`.
#[derive(Clone, Default)]
struct Flaky {
    failing: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl Health for Flaky {
    async fn check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(Status::unavailable("maintenance"));
        }
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        }))
    }

    type WatchStream = tokio_stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not in this example"))
    }
}

async fn serve(health: Flaky) -> Result<SocketAddr, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener);
    tokio::spawn(
        Server::builder()
            .add_service(HealthServer::new(health))
            .serve_with_incoming(incoming),
    );
    Ok(addr)
}
