package control

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vipd/vipd/vrrp"
)

// A process tracker's count is in its own field, present also when no
// process matches; other trackers have none.
func TestStatusProcessTrackerCount(t *testing.T) {
	st := vrrp.Status{Instances: []vrrp.InstanceStatus{{Name: "web", Trackers: []vrrp.TrackerStatus{
		{Kind: "process", Name: "lb", Failing: true, Value: 0, Weight: -50},
		{Kind: "process", Name: "ssh", Value: 2},
		{Kind: "file", Name: "/run/w", Value: 3, Weight: 2},
	}}}}
	b, err := json.Marshal(toStatus(st, "test").Instances[0].Trackers)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"kind":"process","name":"lb","failing":true,"count":0,"weight":-50},` +
		`{"kind":"process","name":"ssh","failing":false,"count":2,"weight":0},` +
		`{"kind":"file","name":"/run/w","failing":false,"value":3,"weight":2}]`
	if got := string(b); got != want {
		t.Errorf("trackers:\n got %s\nwant %s", got, strings.TrimSpace(want))
	}
}
