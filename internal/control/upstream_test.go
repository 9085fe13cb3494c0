package control

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/vrrp"
)

// The upstream check's JSON: each upstream's state by name, the last check
// only once there was one, and the counts by upstream; none at all for an
// instance that is not checking.
func TestStatusUpstreams(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	gw, fw := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	st := vrrp.Status{Instances: []vrrp.InstanceStatus{{Name: "web",
		Upstreams: []vrrp.UpstreamStatus{
			{Address: gw, Default: true, State: vrrp.UpstreamMoved, Attempts: 1, LastCheck: at},
			{Address: fw, State: vrrp.UpstreamNotMoved, Attempts: 3, LastCheck: at, Error: "no echo reply"},
			{Default: true, State: vrrp.UpstreamChecking},
		},
		UpstreamCounts: []vrrp.UpstreamCount{{Upstream: gw, Moved: 1}, {Upstream: fw, NotMoved: 3, Errors: 1}},
	}, {Name: "api"}}}
	s := toStatus(st, "test")
	b, err := json.Marshal(struct {
		U []Upstream      `json:"u"`
		C []UpstreamCheck `json:"c"`
	}{s.Instances[0].Upstreams, s.Instances[0].UpstreamChecks})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"u":[{"address":"198.18.0.1","default":true,"state":"moved","attempts":1,"last_check":"2026-01-01T12:00:00Z"},` +
		`{"address":"198.18.0.2","default":false,"state":"not-moved","attempts":3,"last_check":"2026-01-01T12:00:00Z","error":"no echo reply"},` +
		`{"address":"","default":true,"state":"checking","attempts":0}],` +
		`"c":[{"address":"198.18.0.1","moved":1,"not_moved":0,"errors":0},{"address":"198.18.0.2","moved":0,"not_moved":3,"errors":1}]}`
	if got := string(b); got != want {
		t.Errorf("upstreams:\n got %s\nwant %s", got, want)
	}
	b, err = json.Marshal(s.Instances[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["upstreams"]; ok {
		t.Errorf("an instance without a check has upstreams: %s", b)
	}
}
