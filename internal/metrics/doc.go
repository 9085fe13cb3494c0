// Package metrics serves vipd's Prometheus metrics (/metrics) and its
// health check (/healthz) over HTTP.
//
// Every vipd_ series is built at scrape time from one vrrp.Status snapshot
// (a const-metric Collector in node_exporter's shape), next to the standard
// Go and process collectors, and served by client_golang's promhttp, which
// negotiates the text format or OpenMetrics and gzip.
//
// It must never keep a second copy of the node's counters, never change
// the node, and never let a request wait on the protocol loop for longer
// than its timeout (2 s for a scrape, 1 s for /healthz): a wedged loop
// fails the request instead of hanging it.
package metrics
