SHELL := /bin/bash
# vipd: build, test, lint, demo and benchmarks.
# The lab (e2e/) needs root: `sudo make test` runs it, `make test` as a normal
# user runs the unit tests and skips the lab.

GO          ?= go
BIN         := bin/vipd
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOBIN       := $(shell $(GO) env GOPATH)/bin
ROOT        := $(shell id -u)
# Unit tests: every package but the lab.
UNIT_PKGS    = $(shell $(GO) list ./... | grep -v '/e2e')

.PHONY: all build deb deps test unit fuzz-ci e2e lint demo bench bench-quick bench-failover reliability fuzz clean

all: build

# Static, without cgo: no libc mapped (about 1 MB less resident), and the
# same binary as the .deb's.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/vipd

# vipd_<DEB_VERSION>_<arch>.deb in bin/ (deploy/debian/build.sh, dpkg-deb).
# The version is the tag's (v1.2 -> 1.2-1), else 0.0~git<commit time>.<commit>-1,
# so a later commit is an upgrade.
DEB_VERSION ?= $(shell t=$$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null) && echo $${t\#v}-1 || \
	git log -1 --date=format-local:%Y%m%d%H%M%S --format='0.0~git%cd.%h-1' 2>/dev/null || echo 0.0~dev-1)
deb:
	GO=$(GO) deploy/debian/build.sh bin $(DEB_VERSION)

# Debian packages the lab runs for real: iproute2 builds it, keepalived and
# frr (its zebra and vrrpd) are the interop peers, tshark the independent dissector, Prometheus (with
# promtool) the scraper, setpriv (util-linux) and systemd-analyze check the
# unit; lintian, man-db and zsh check the .deb (e2e/package_test.go). As
# root, missing ones are installed; `make demo` needs only iproute2.
DEB_PKGS := iproute2 iputils-ping keepalived frr tcpdump tshark prometheus util-linux systemd nftables \
	lintian man-db zsh

deps:
ifeq ($(ROOT),0)
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
else
	@echo "deps: not root; the lab's Debian packages are not checked (run 'sudo make test')"
endif

test: deps unit fuzz-ci e2e

# Every fuzz target for a bounded amount of work, seeded from its kept corpus.
# Budgets are execution counts, not durations: with a duration, Go 1.26's
# fuzzing coordinator can report its own deadline as a failure with no
# failing input (go.dev/issue/75804). A count also gives every machine the
# same work; -timeout bounds a run that stalls. Each CI budget takes about
# 3-10 s here; RELIABILITY.md's run does five times as much.
FUZZ_TIMEOUT    ?= 5m
FUZZ_VRRP_CI    ?= 200000x
FUZZ_CONFIG_CI  ?= 100000x
FUZZ_VIPD_CI    ?= 40000x
fuzz-run = $(GO) test $(1) -run '^$$' -fuzz '^$(2)$$' -fuzztime $(3) -timeout $(FUZZ_TIMEOUT)
fuzz-ci:
	$(call fuzz-run,./vrrp,FuzzUnmarshal,$(FUZZ_VRRP_CI))
	$(call fuzz-run,./config,FuzzParse,$(FUZZ_CONFIG_CI))
	$(call fuzz-run,./internal/control,FuzzDecodeMaintenance,$(FUZZ_VIPD_CI))

# As root (CI), tests that need promtool or a namespace must run, not skip.
unit:
ifeq ($(ROOT),0)
	VIPD_LAB=required $(GO) test -race -count=1 $(UNIT_PKGS)
else
	$(GO) test -race -count=1 $(UNIT_PKGS)
endif

# As root the lab must run: a skipped lab is a failure (VIPD_LAB=required).
e2e: build
ifeq ($(ROOT),0)
	VIPD_LAB=required VIPD_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 16m -v ./e2e/...
else
	@echo "e2e: not root, the namespace lab is skipped (run 'sudo make test')"
	$(GO) test -count=1 ./e2e/...
endif

lint:
	@test -x $(GOBIN)/staticcheck || $(GO) install $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

# A two-node lab with a client: election, failover, the client's outage.
demo: DEB_PKGS := iproute2
demo: deps build
	@test "$(ROOT)" = 0 || { echo "demo: needs root for network namespaces (sudo make demo)"; exit 1; }
	VIPD_BIN=$(CURDIR)/$(BIN) $(GO) run ./e2e/demo

# vipd beside keepalived in the lab (root, about 31 minutes): failover
# outage, CPU and memory with up to 250 instances, spurious transitions
# under a CPU hog, the hot-path Go benchmarks, and outage and one instance's
# footprint with the virtual MAC (phase vmac) and over IPv6 (phase ipv6).
# Writes its sections of bench/REPORT.md and bench/outage.png.
# Shorter: COMPAREFLAGS="-trials 5 -soak 60s"; only the virtual MAC:
# COMPAREFLAGS="-phases vmac"; only IPv6: COMPAREFLAGS="-phases ipv6".
bench: build
	@test "$(ROOT)" = 0 || { echo "bench: needs root for network namespaces (sudo make bench)"; exit 1; }
	$(GO) run ./bench/compare -vipd $(CURDIR)/$(BIN) $(COMPAREFLAGS)

# One instance's CPU (cores, µs and context switches per advert) on the
# master and the backup, vipd beside keepalived at the same time, at 20 ms,
# 100 ms and 1 s adverts, medians of 3 rounds (root, about two and a half
# minutes); prints, writes no report.
bench-quick: build
	@test "$(ROOT)" = 0 || { echo "bench-quick: needs root for network namespaces (sudo make bench-quick)"; exit 1; }
	$(GO) run ./bench/compare -vipd $(CURDIR)/$(BIN) -quick $(COMPAREFLAGS)

# vipd's own failover outage distributions, five scenarios, in the lab (root).
bench-failover: build
	@test "$(ROOT)" = 0 || { echo "bench-failover: needs root for network namespaces (sudo make bench-failover)"; exit 1; }
	VIPD_BIN=$(CURDIR)/$(BIN) $(GO) run ./bench/failover -out bench/REPORT.md $(BENCHFLAGS)

# The reliability suite and bounded fuzzing, written up as RELIABILITY.md
# (root). A failing case still gets its row; the generator then exits 1.
RELIABILITY := bin/reliability
FUZZ_VRRP    ?= 1000000x
FUZZ_CONFIG  ?= 500000x
FUZZ_VIPD    ?= 200000x
reliability: build
	@test "$(ROOT)" = 0 || { echo "reliability: needs root for network namespaces (sudo make reliability)"; exit 1; }
	rm -rf $(RELIABILITY) && mkdir -p $(RELIABILITY)
	-VIPD_LAB=required VIPD_BIN=$(CURDIR)/$(BIN) VIPD_RELIABILITY_OUT=$(CURDIR)/$(RELIABILITY)/cases.jsonl \
		$(GO) test -count=1 -timeout 10m -v -run '^TestReliability' ./e2e/ > $(RELIABILITY)/lab.log 2>&1
	-$(call fuzz-run,./vrrp,FuzzUnmarshal,$(FUZZ_VRRP)) > $(RELIABILITY)/fuzz-vrrp.log 2>&1
	-$(call fuzz-run,./config,FuzzParse,$(FUZZ_CONFIG)) > $(RELIABILITY)/fuzz-config.log 2>&1
	-$(call fuzz-run,./internal/control,FuzzDecodeMaintenance,$(FUZZ_VIPD)) > $(RELIABILITY)/fuzz-vipd.log 2>&1
	$(GO) run ./e2e/reliability-report -in $(RELIABILITY)/cases.jsonl -lab-log $(RELIABILITY)/lab.log \
		-fuzz './vrrp FuzzUnmarshal $(FUZZ_VRRP)=$(RELIABILITY)/fuzz-vrrp.log' \
		-fuzz './config FuzzParse $(FUZZ_CONFIG)=$(RELIABILITY)/fuzz-config.log' \
		-fuzz './internal/control FuzzDecodeMaintenance $(FUZZ_VIPD)=$(RELIABILITY)/fuzz-vipd.log' \
		-out RELIABILITY.md

# Longer fuzzing runs of the parsers, the same budgets as RELIABILITY.md.
fuzz:
	$(call fuzz-run,./vrrp,FuzzUnmarshal,$(FUZZ_VRRP))
	$(call fuzz-run,./config,FuzzParse,$(FUZZ_CONFIG))
	$(call fuzz-run,./internal/control,FuzzDecodeMaintenance,$(FUZZ_VIPD))

clean:
	rm -rf bin
