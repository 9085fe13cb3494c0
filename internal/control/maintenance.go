package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/vrrp"
)

// maintenanceRequest is the body of POST /v1/maintenance.
type maintenanceRequest struct {
	Instance string `json:"instance"`
	On       *bool  `json:"on"`
}

// EncodeMaintenance is the body of POST /v1/maintenance that puts instance
// in maintenance (on) or takes it out.
func EncodeMaintenance(instance string, on bool) []byte {
	b, _ := json.Marshal(maintenanceRequest{Instance: instance, On: &on})
	return b
}

// maxRequestBody bounds what the control socket reads of a request body.
const maxRequestBody = 4096

// decodeMaintenance parses and checks a maintenance request: exactly one
// JSON object with a non-empty instance and an explicit on, nothing else.
func decodeMaintenance(r io.Reader) (string, bool, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxRequestBody+1))
	if err != nil {
		return "", false, fmt.Errorf("bad request body: %v", err)
	}
	if len(body) > maxRequestBody {
		return "", false, fmt.Errorf("bad request body: longer than %d bytes", maxRequestBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req maintenanceRequest
	if err := dec.Decode(&req); err != nil {
		return "", false, fmt.Errorf("bad request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", false, errors.New("bad request body: trailing data after the JSON object")
	}
	if req.Instance == "" || req.On == nil {
		return "", false, errors.New(`bad request body: want {"instance": NAME, "on": true|false}`)
	}
	return req.Instance, *req.On, nil
}

type connKey struct{}

// peerUID returns the user id of the process at the other end of the
// control socket connection.
func peerUID(ctx context.Context) (uint32, error) {
	c, ok := ctx.Value(connKey{}).(*net.UnixConn)
	if !ok {
		return 0, errors.New("not a Unix socket connection")
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

// requireRoot refuses a mutating call from anyone but root.
func requireRoot(w http.ResponseWriter, r *http.Request) bool {
	uid, err := peerUID(r.Context())
	if err != nil {
		http.Error(w, "cannot check the caller's credentials: "+err.Error(), http.StatusForbidden)
		return false
	}
	if uid != 0 {
		http.Error(w, fmt.Sprintf("permission denied: changing vipd needs root (caller uid %d)", uid), http.StatusForbidden)
		return false
	}
	return true
}

func maintenanceHandler(node Node) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !requireRoot(w, r) {
			return
		}
		// The body is small (maxRequestBody): a client that sends it
		// slowly is cut off. The server has no ReadTimeout, which would
		// end the event streams.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(5 * time.Second))
		name, on, err := decodeMaintenance(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		switch err := node.SetMaintenance(ctx, name, on); {
		case errors.Is(err, vrrp.ErrNoInstance):
			http.Error(w, err.Error(), http.StatusNotFound)
		case errors.Is(err, vrrp.ErrNotSaved):
			http.Error(w, fmt.Sprintf("maintenance %s for %s: %v", onOff(on), name, err), http.StatusInternalServerError)
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"instance": name, "maintenance": on})
		}
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
