package control

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeMaintenance feeds arbitrary request bodies to the control
// socket's maintenance decoder. It must never panic; it either refuses the
// body with a "bad request body" error and nothing else, or returns a
// non-empty instance name for a body that is one JSON object within the
// size the socket reads. What `vipd maintenance` would send for the
// decoded request must decode to the same request. The seeds, past
// findings included, live in testdata/fuzz/FuzzDecodeMaintenance.
func FuzzDecodeMaintenance(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		name, on, err := decodeMaintenance(bytes.NewReader(body))
		if err != nil {
			if name != "" || on {
				t.Fatalf("error %v came with instance %q, on %v", err, name, on)
			}
			if !strings.HasPrefix(err.Error(), "bad request body") {
				t.Fatalf("error %q does not say the body is bad", err)
			}
			return
		}
		if name == "" {
			t.Fatalf("accepted %q with an empty instance name", body)
		}
		// "Exactly one JSON object, nothing else": a body longer than the
		// socket reads cannot be known to end there, so it must be refused.
		if len(body) > maxRequestBody {
			t.Fatalf("accepted a %d-byte body; the socket reads at most %d (trailing %q)",
				len(body), maxRequestBody, tail(body))
		}
		if !json.Valid(body) || bytes.TrimSpace(body)[0] != '{' {
			t.Fatalf("accepted %q, which is not one JSON object", body)
		}

		// The command line client's encoding of the decoded request.
		again := EncodeMaintenance(name, on)
		if len(again) > maxRequestBody {
			// Escaping can make a name that fitted longer than the limit.
			return
		}
		name2, on2, err := decodeMaintenance(bytes.NewReader(again))
		if err != nil || name2 != name || on2 != on {
			t.Fatalf("%s decodes to %q, %v, %v; want %q, %v", again, name2, on2, err, name, on)
		}
	})
}

// tail is the end of b, for messages about long bodies.
func tail(b []byte) []byte {
	if len(b) > 32 {
		return b[len(b)-32:]
	}
	return b
}
