package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vipd/vipd/vrrp"
)

// The control socket's JSON API (GET /v1/status, GET /v1/events).

type apiStatus struct {
	Version    string        `json:"version"`
	Goroutines int           `json:"goroutines"` // of the whole daemon, for spotting leaks
	Started    time.Time     `json:"started"`
	Reload     apiReload     `json:"reload"`
	Instances  []apiInstance `json:"instances"`
}

type apiReload struct {
	OK       bool      `json:"ok"`
	Time     time.Time `json:"time"`
	Failures uint64    `json:"failures"`
}

type apiInstance struct {
	Name                        string            `json:"name"`
	Interface                   string            `json:"interface"`
	VRID                        uint8             `json:"vrid"`
	Version                     int               `json:"version"`
	State                       string            `json:"state"`
	Priority                    uint8             `json:"priority"`
	EffectivePriority           uint8             `json:"effective_priority"`
	AdvertIntervalSeconds       float64           `json:"advert_interval_seconds"`
	MasterAdvertIntervalSeconds float64           `json:"master_advert_interval_seconds"`
	PrimaryAddress              string            `json:"primary_address"`
	MasterAddress               string            `json:"master_address"`
	MasterPriority              uint8             `json:"master_priority"`
	LastTransition              time.Time         `json:"last_transition"`
	VIPs                        []apiVIP          `json:"vips"`
	Counters                    apiCounters       `json:"counters"`
	Dropped                     map[string]uint64 `json:"dropped"`
	Maintenance                 bool              `json:"maintenance"`
	Held                        bool              `json:"held"`
	SyncGroup                   string            `json:"sync_group,omitempty"`
	Trackers                    []apiTracker      `json:"trackers"`
	LowerPriorityMaster         *apiLowerMaster   `json:"lower_priority_master,omitempty"`
}

// apiLowerMaster is a router that keeps advertising as master at a lower
// priority than this master's: it does not accept this node's adverts.
type apiLowerMaster struct {
	Address  string    `json:"address"`
	Priority uint8     `json:"priority"`
	Since    time.Time `json:"since"`
	LastSeen time.Time `json:"last_seen"`
	Adverts  uint64    `json:"adverts"`
	Answers  uint64    `json:"answers"` // adverts answered with an advert and a gratuitous ARP
}

type apiTracker struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Failing bool   `json:"failing"`
	Value   int    `json:"value,omitempty"`
	Weight  int    `json:"weight"`
	Error   string `json:"error,omitempty"`
}

type apiVIP struct {
	Address     string `json:"address"`
	Description string `json:"description"`
	Owner       string `json:"owner"`
	Present     bool   `json:"present"`
	// The last add's error while adding the VIP fails, and the failed
	// adds since vipd started.
	AddError    string `json:"add_error,omitempty"`
	AddFailures uint64 `json:"add_failures"`
}

type apiCounters struct {
	AdvertsSent          uint64            `json:"adverts_sent"`
	AdvertsReceived      uint64            `json:"adverts_received"`
	PriorityZeroSent     uint64            `json:"priority_zero_sent"`
	PriorityZeroReceived uint64            `json:"priority_zero_received"`
	GARPSent             uint64            `json:"garp_sent"`
	AddressListMismatch  uint64            `json:"address_list_mismatch"`
	VIPsRestored         uint64            `json:"vips_restored"`
	Transitions          map[string]uint64 `json:"transitions"`
}

type apiEvent struct {
	Time         time.Time `json:"time"`
	Instance     string    `json:"instance"`
	Interface    string    `json:"interface"`
	VRID         uint8     `json:"vrid"`
	From         string    `json:"from"`
	To           string    `json:"to"`
	Reason       string    `json:"reason"`
	Priority     uint8     `json:"priority"`
	Peer         string    `json:"peer,omitempty"`
	PeerPriority uint8     `json:"peer_priority,omitempty"`
}

func addrString(a interface{ IsValid() bool }) string {
	if !a.IsValid() {
		return ""
	}
	return fmt.Sprint(a)
}

func toAPIStatus(s vrrp.Status, version string) apiStatus {
	out := apiStatus{
		Version:    version,
		Goroutines: runtime.NumGoroutine(),
		Started:    s.Started,
		Reload:     apiReload{OK: s.ReloadOK, Time: s.ReloadTime, Failures: s.ReloadErrors},
		Instances:  []apiInstance{},
	}
	for _, in := range s.Instances {
		ai := apiInstance{
			Name: in.Name, Interface: in.Interface, VRID: in.VRID, Version: in.Version,
			State: in.State.String(), Priority: in.Priority, EffectivePriority: in.EffectivePriority,
			AdvertIntervalSeconds:       in.AdvertInterval.Seconds(),
			MasterAdvertIntervalSeconds: in.MasterAdvertInterval.Seconds(),
			PrimaryAddress:              addrString(in.PrimaryAddr),
			MasterAddress:               addrString(in.MasterAddr),
			MasterPriority:              in.MasterPriority,
			LastTransition:              in.LastTransition,
			VIPs:                        []apiVIP{},
			Counters: apiCounters{
				AdvertsSent: in.Counters.AdvertsSent, AdvertsReceived: in.Counters.AdvertsReceived,
				PriorityZeroSent: in.Counters.PriorityZeroSent, PriorityZeroReceived: in.Counters.PriorityZeroReceived,
				GARPSent: in.Counters.GARPSent, AddressListMismatch: in.Counters.AddressListMismatch,
				VIPsRestored: in.Counters.VIPsRestored, Transitions: map[string]uint64{},
			},
			Dropped:     map[string]uint64{},
			Maintenance: in.Maintenance,
			Held:        in.Held,
			SyncGroup:   in.SyncGroup,
			Trackers:    []apiTracker{},
		}
		if lm := in.LowerMaster; lm != nil {
			ai.LowerPriorityMaster = &apiLowerMaster{Address: addrString(lm.Addr), Priority: lm.Priority,
				Since: lm.Since, LastSeen: lm.LastSeen, Adverts: lm.Adverts, Answers: lm.Answers}
		}
		for _, tr := range in.Trackers {
			ai.Trackers = append(ai.Trackers, apiTracker{Kind: tr.Kind, Name: tr.Name, Failing: tr.Failing, Value: tr.Value, Weight: tr.Weight, Error: tr.Error})
		}
		for k, v := range in.Counters.Transitions {
			ai.Counters.Transitions[k[0].String()+"->"+k[1].String()] = v
		}
		for _, r := range vrrp.AllDropReasons() {
			if c := in.Counters.Dropped[r]; c > 0 {
				ai.Dropped[r.String()] = c
			}
		}
		for _, v := range in.VIPs {
			ai.VIPs = append(ai.VIPs, apiVIP{Address: vipString(v.Address), Description: v.Description, Owner: v.Owner, Present: v.Present,
				AddError: v.AddError, AddFailures: v.AddFailures})
		}
		out.Instances = append(out.Instances, ai)
	}
	return out
}

// vipString writes a /32 as the bare address, as the configuration does.
func vipString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func toAPIEvent(e vrrp.TransitionEvent) apiEvent {
	return apiEvent{
		Time: e.Time, Instance: e.Instance, Interface: e.Interface, VRID: e.VRID,
		From: e.From.String(), To: e.To.String(), Reason: e.Reason.String(), Priority: e.Priority,
		Peer: addrString(e.Peer), PeerPriority: e.PeerPriority,
	}
}

// controlServer serves the API on a Unix socket.
type controlServer struct {
	path   string
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// listenControl opens the control socket at path (mode 0660). A socket file
// left by a crashed run is replaced; one that another vipd still answers on
// is an error, and so is a path that is not a socket.
func listenControl(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another vipd is answering on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket %s: removing the stale socket: %w", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// Create it with the final mode at once: no moment when others may
	// connect. Nothing else creates files while vipd starts.
	old := syscall.Umask(0o117)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	return ln, nil
}

// controlNode is what the control socket needs of the *vrrp.Node.
type controlNode interface {
	Status(ctx context.Context) (vrrp.Status, error)
	Subscribe(buf int) (<-chan vrrp.TransitionEvent, func())
	SetMaintenance(ctx context.Context, instance string, on bool) error
}

// startControl serves the API for node on ln until Close. It serves at
// most maxControlConns connections and maxEventSubscribers event streams
// at a time; a client beyond either gets 503 with the reason.
func startControl(ln net.Listener, node controlNode, version string, log *slog.Logger) *controlServer {
	base, cancel := context.WithCancel(context.Background())
	c := &controlServer{path: ln.Addr().String(), cancel: cancel}
	ln = newLimitListener(ln, maxControlConns, "control socket", log)
	var subscribers atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		s, err := node.Status(ctx)
		if err != nil {
			http.Error(w, "status: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(toAPIStatus(s, version))
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		if subscribers.Add(1) > maxEventSubscribers {
			subscribers.Add(-1)
			http.Error(w, fmt.Sprintf("too many event subscribers (at most %d at a time); try again later", maxEventSubscribers),
				http.StatusServiceUnavailable)
			return
		}
		defer subscribers.Add(-1)
		events, unsubscribe := node.Subscribe(64)
		defer unsubscribe()
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		enc := json.NewEncoder(w)
		for {
			select {
			case <-r.Context().Done():
				return
			case ev, ok := <-events:
				if !ok {
					return // the node stopped, or we fell behind
				}
				// A client that stops reading is cut off rather than
				// holding a goroutine forever.
				_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if enc.Encode(toAPIEvent(ev)) != nil || rc.Flush() != nil {
					return
				}
			}
		}
	})
	mux.HandleFunc("POST /v1/maintenance", maintenanceHandler(node))
	c.srv = &http.Server{
		Handler: mux,
		ConnContext: func(ctx context.Context, conn net.Conn) context.Context {
			if lc, ok := conn.(*limitConn); ok {
				conn = lc.NetConn() // the *net.UnixConn, for peerUID
			}
			return context.WithValue(ctx, connKey{}, conn)
		},
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		// A client that stops reading is cut off; the event stream moves
		// its own deadline before every write.
		WriteTimeout: 10 * time.Second,
		IdleTimeout:  60 * time.Second,
		BaseContext:  func(net.Listener) context.Context { return base },
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket failed", "socket", c.path, "err", err)
		}
	}()
	return c
}

// Close ends the event streams, stops the server, removes the socket file
// and waits for the serving goroutine.
func (c *controlServer) Close() {
	c.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.srv.Shutdown(ctx); err != nil {
		c.srv.Close()
	}
	c.wg.Wait()
}
