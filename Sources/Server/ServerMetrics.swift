import Node
import Prometheus
import Synchronization

/// The server's Prometheus metrics (`GET /metrics`).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let timeToFirstToken: ValueHistogram
    let timePerOutputToken: ValueHistogram
    let ledgerRecord: ValueHistogram
    let routeDecision: ValueHistogram
    /// Ledger write failures already counted (the counter follows the appender's count).
    private let countedFailures = Mutex(0)

    init() {
        timeToFirstToken = registry.makeValueHistogram(
            name: "verity_time_to_first_token_seconds",
            buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
            help: "Seconds from a completion request's arrival to its first generated token.")
        timePerOutputToken = registry.makeValueHistogram(
            name: "verity_time_per_output_token_seconds",
            buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
            help: "Seconds between consecutive generated tokens of one completion.")
        ledgerRecord = registry.makeValueHistogram(
            name: "verity_ledger_record_seconds",
            buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
            help: "Seconds to encrypt a completion's record and store it durably, before its response completes.")
        routeDecision = registry.makeValueHistogram(
            name: "verity_gateway_route_seconds",
            buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1],
            help: "Seconds a gateway takes to pick the workers for a request (filter and rank the fleet's adverts).")
    }

    func request(endpoint: String, status: Int) {
        registry.makeCounter(name: "verity_requests_total", labels: [("endpoint", endpoint), ("status", String(status))],
                             help: "HTTP requests answered, by endpoint and status.").increment()
    }

    /// A token's latency: since the request arrived (`first`) or since the previous token.
    func record(_ latency: Duration, first: Bool) {
        (first ? timeToFirstToken : timePerOutputToken).record(Self.seconds(latency))
    }

    /// How long recording one completion in the ledger took.
    func ledgerRecorded(in duration: Duration) {
        ledgerRecord.record(Self.seconds(duration))
    }

    /// How long one routing decision took.
    func routed(in duration: Duration) {
        routeDecision.record(Self.seconds(duration))
    }

    private static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// Idle connections closed to make room for new ones (``ConnectionGuard``).
    func connectionsEvicted(_ n: Int) {
        registry.makeCounter(name: "verity_connections_evicted_total",
                             help: "Idle or slow connections closed because the connection cap was reached.").increment(by: Int64(n))
    }

    func tokens(model: String, prompt: Int, completion: Int) {
        registry.makeCounter(name: "verity_prompt_tokens_total", labels: [("model", model)],
                             help: "Prompt tokens of finished completions.").increment(by: Int64(prompt))
        registry.makeCounter(name: "verity_completion_tokens_total", labels: [("model", model)],
                             help: "Generated tokens of finished completions.").increment(by: Int64(completion))
    }

    /// Prometheus text, with the schedulers' live load and the open connections.
    func render(models: [ServedModel], connections: Int? = nil, ledger: LedgerAppender.Health? = nil) -> [UInt8] {
        if let ledger {
            let delta = countedFailures.withLock { counted in
                defer { counted = max(counted, ledger.writeFailures) }
                return ledger.writeFailures - counted
            }
            let failures = registry.makeCounter(name: "verity_ledger_write_failures_total",
                                                help: "Ledger writes that failed: write-ahead, completion, seal, or refused for lack of space.")
            if delta > 0 { failures.increment(by: Int64(delta)) }
            registry.makeGauge(name: "verity_ledger_spooled_records",
                               help: "Completed records waiting in memory for storage to take them.").set(Double(ledger.spooled))
            registry.makeGauge(name: "verity_ledger_healthy", help: "1 while the ledger can record, else 0 (see /health).")
                .set(Double(ledger.isHealthy ? 1 : 0))
            registry.makeGauge(name: "verity_ledger_unpublished_records",
                               help: "Records appended but not yet in a published block (sealed and, with witnesses, cosigned).")
                .set(Double(ledger.unpublished))
            if let witnesses = ledger.witnesses {
                for (name, count) in witnesses.failures {
                    registry.makeGauge(name: "verity_ledger_witness_failures", labels: [("witness", name)],
                                       help: "Cosigning requests to this witness that failed or were refused, since start.").set(Double(count))
                }
                registry.makeGauge(name: "verity_ledger_blocks_published", help: "Blocks published with enough cosignatures, since start.")
                    .set(Double(witnesses.published))
                if let delay = witnesses.lastPublishDelay {
                    registry.makeGauge(name: "verity_ledger_publish_delay_seconds",
                                       help: "From asking the witnesses to cosign the last published block to meeting the policy.").set(delay)
                }
            }
        }
        if let connections {
            registry.makeGauge(name: "verity_open_connections", help: "HTTP connections open now.").set(Double(connections))
        }
        for served in models {
            let load = served.scheduler.load
            registry.makeGauge(name: "verity_active_sequences", labels: [("model", served.id)],
                               help: "Sequences being generated now.").set(Double(load.active))
            registry.makeGauge(name: "verity_queue_depth", labels: [("model", served.id)],
                               help: "Requests waiting for a free sequence.").set(Double(load.queued))
        }
        return registry.emitToBuffer()
    }
}
