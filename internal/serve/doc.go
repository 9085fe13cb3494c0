// Package serve runs vipd's local HTTP servers, the control socket and the
// metrics listener, within bounds: a client can never make the daemon hold
// more than a fixed number of connections, a request header larger than
// MaxHeaderBytes, or a goroutine that nobody waits for.
//
// It knows nothing of what the servers answer. It must never serve a
// connection beyond its listener's limit, and never block its accept loop
// on a client: a refusal is written by a short-lived goroutine that Close
// waits for.
package serve
