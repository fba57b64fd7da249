# The two entry points of the README. Everything they need, they install.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= reports/demo
DURATION ?=

# System packages the tests run for real: Janus (WebRTC origin), ffmpeg (its
# feed), nftables/iproute2 (impairments in test namespaces), VictoriaMetrics
# (time-series server behind the InfluxDB backend), Alertmanager, Chromium.
APT_PACKAGES := janus ffmpeg nftables iproute2 victoria-metrics prometheus-alertmanager prometheus \
  chromium postgresql systemd

# The edit-test loop: lint, types and the tests that need no root and start
# no real server, browser or show (markers in pyproject.toml).
CHECK_MARKERS := not slow and not root and not server

.PHONY: demo test check lint venv sysdeps clean

$(BIN)/qosmon: pyproject.toml
	@# A bare Debian python3 lacks ensurepip; install it when we can.
	@$(PY) -m venv --help >/dev/null 2>&1 && $(PY) -c 'import ensurepip' 2>/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/qosmon

demo: venv
	$(BIN)/qosmon demo --out $(OUT) $(if $(DURATION),--duration $(DURATION))

sysdeps:
	@if [ "$$(id -u)" = 0 ]; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  fi; \
	else echo "not root: tests that need system packages or namespaces will be skipped"; fi

lint: venv
	$(BIN)/ruff check qosmon probes tests bench
	$(BIN)/mypy

test: venv sysdeps lint
	$(BIN)/python -m pytest -q --durations=15

check: venv lint
	$(BIN)/python -m pytest -q -m "$(CHECK_MARKERS)"

clean:
	rm -rf $(VENV) reports/demo
