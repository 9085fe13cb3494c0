package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/control"
)

func TestPrintStatusRoutes(t *testing.T) {
	s := control.Status{Reload: control.Reload{OK: true}, Instances: []control.Instance{{
		Name: "web", Interface: "eth0", VRID: 51, State: "master",
		Routes: []control.Route{
			{To: "0.0.0.0/0", Via: "198.18.2.1", Interface: "eth1", Table: "100", Scope: "global", Type: "unicast", Present: true},
			{To: "198.18.8.0/24", Interface: "eth1", Source: "198.18.2.100", Table: "main", Scope: "link", Type: "unicast", Waiting: true},
		},
		Rules: []control.Rule{{From: "198.18.2.100/32", To: "all", Table: "100", Priority: 100, AddError: "file exists"}},
	}}, Static: control.Static{Routes: []control.Route{{To: "198.18.9.0/24", Table: "main", Type: "blackhole", Scope: "global"}}}}
	var b strings.Builder
	printStatus(&b, s, time.Now())
	want := "\nweb: route default via 198.18.2.1 dev eth1 table 100  on\n" +
		"web: route 198.18.8.0/24 dev eth1 src 198.18.2.100 scope link  waiting for its source VIP\n" +
		"web: rule from 198.18.2.100/32 priority 100 lookup 100  failing: file exists\n" +
		"static: route blackhole 198.18.9.0/24  off\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("status:\n%s\nwant the lines:\n%s", b.String(), want)
	}
}
