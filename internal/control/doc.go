// Package control serves vipd's control socket: a local HTTP API on a Unix
// socket (mode 0660) with GET /v1/status, GET /v1/events (an NDJSON stream
// of state transitions) and POST /v1/maintenance (root only, by the
// caller's SO_PEERCRED). Its JSON types are the API that `vipd status`,
// `vipd events` and scripts read.
//
// It must never let a client hold the daemon without bound (connections,
// event streams, header and body sizes, time are all limited), never let a
// caller other than root change the node, and never wait on the protocol
// loop without a deadline.
package control
